"""Several timelines side by side: home, notifications, federated."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal

from .timeline import TimelinePane, TimelineView
from .base import BaseScreen
from .federated import FederatedScreen
from .home import HomeScreen
from .notifications import NotificationsScreen


class ColumnsScreen(BaseScreen):
    TITLE = "Columns"
    BINDINGS = [Binding("tab", "column(1)", "Next column", priority=True),
                Binding("shift+tab", "column(-1)", "Prev column", show=False, priority=True)]
    DEFAULT_CSS = """
    ColumnsScreen TimelinePane { width: 1fr; border-right: vkey $panel-lighten-2; }
    """

    def body(self) -> ComposeResult:
        with Horizontal():
            for screen in (HomeScreen, NotificationsScreen, FederatedScreen):
                yield TimelinePane(screen.TITLE, getattr(screen, "fetch").__get__(self), empty=screen.EMPTY)

    def on_screen_resume(self) -> None:
        if not isinstance(self.focused, TimelineView):
            self.query(TimelineView).first().focus()

    def action_column(self, step: int) -> None:
        views = list(self.query(TimelineView))
        at = views.index(self.focused) if self.focused in views else -1
        views[(at + step) % len(views)].focus()
