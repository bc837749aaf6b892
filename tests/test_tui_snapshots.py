"""The look of the main screens at a fixed size, with fixed data and a frozen clock."""

from __future__ import annotations

from typing import Any

from tui_fake import NOW, FakeApi
from tui_helpers import until, view
from murmurate.ui.tui.app import MurmurateApp

SIZE = (100, 30)


def make_app() -> MurmurateApp:
    return MurmurateApp(api=FakeApi(), now_ms=lambda: NOW)


def ready_then(*keys: str, screen: str | None = None) -> Any:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await until(pilot, lambda: app.ready and view(app).items, "the home timeline")
        await pilot.press(*keys)
        if screen:
            await until(pilot, lambda: app.screen.__class__.__name__ == screen, screen)
            await until(pilot, lambda: not view(app).busy and view(app).items, f"{screen} loaded")
    return run_before


def test_home(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready_then())


def test_home_cw_open_and_selection_moved(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready_then("j", "x"))


def test_notifications(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready_then("n", screen="NotificationsScreen"))


def test_thread(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE,
                        run_before=ready_then("G", "enter", screen="ThreadScreen"))


def test_columns(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(150, 30), run_before=ready_then("m", screen="ColumnsScreen"))


def test_compose(snap_compare) -> None:
    async def run_before(pilot: Any) -> None:
        await ready_then("c")(pilot)
        await pilot.press(*"Look: https://example.org/some/long/path #murmurate")
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready_then("question_mark"))
