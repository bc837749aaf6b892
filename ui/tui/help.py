from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """[b]Murmurate keys[/b]   (the mouse works too: click a post to select it)

[b]Sections[/b]
  h  home          n  notifications   w  federated     #  hashtag
  /  search        l  lists           d  conversations  m  several columns
  p  peers & sync  s  settings        u  your profile   c  compose
  ?  this help     q  quit            escape  back

[b]On a timeline[/b]
  j / k / ↑ / ↓  next / previous post    space / page up/down  by page
  g / G          top / end               .  jump to the new posts above
  enter  open the conversation           a  the author's profile
  r  reply     o  quote     b  boost (again: take back)     f  favourite (again: take back)
  x  show or hide the text behind a content warning

[b]Columns[/b]   tab / shift+tab  next / previous column

[b]Compose[/b]   ctrl+s send, escape cancel; links count as 23 characters
[b]Profile[/b]   F follow/unfollow, B block/unblock, M mute/unmute
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: auto; max-height: 90%; border: round $accent;
                                  background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(KEYS)
