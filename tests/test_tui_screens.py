"""The terminal client against real daemons: each screen's main path, through Pilot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons import DaemonProcess, wait_until
from tui_helpers import bar, on_asyncio, shown, texts, until, view
from murmurate.ui.api_client import ApiClient
from murmurate.ui.tui.app import MurmurateApp
from murmurate.ui.tui.launch import Launcher
from murmurate.node.home import Home, socket_path

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

SIZE = (110, 36)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    """a (the reader, whose home the app opens) follows b; both have names and posts."""
    a, b = DaemonProcess(tmp_path, "a").init(), DaemonProcess(tmp_path, "b").init()
    try:
        a.start()
        b.start()
        a.call("set_profile", name="Ann")
        b.call("set_profile", name="Bob", bio="birds and #murmurations")
        a.call("follow", id=b.contact())
        b.call("follow", id=a.contact())
        for i in range(3):
            b.call("post", text=f"bob says {i} #birds")
        b.call("post", text="the ending is sad", cw="film spoiler")
        wait_until(lambda: len([i for i in a.call("timeline")["items"] if i["type"] == "post"]) >= 4,
                   what="bob's posts at a")
        yield a, b
    finally:
        a.close()
        b.close()


def app_for(node: DaemonProcess) -> MurmurateApp:
    return MurmurateApp(launcher=Launcher(str(node.home), node.env))


async def started(pilot, app: MurmurateApp) -> None:
    await until(pilot, lambda: app.ready and view(app).items, "the home timeline")


@pytest.mark.slow
@on_asyncio
async def test_home_shows_live_posts_without_moving_the_reader_and_compose_posts(pair) -> None:
    a, b = pair
    app = app_for(a)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert texts(app)[0] == "the ending is sad"
        # Content warnings are collapsed until opened.
        assert "CW: film spoiler" in shown(app) and not _on_screen(app, "the ending is sad")
        await pilot.press("x")
        await until(pilot, lambda: _on_screen(app, "the ending is sad"), "the CW opened")
        await pilot.press("j")
        reading = view(app).current["ref"]
        b.call("post", text="a live one from bob")
        await until(pilot, lambda: view(app).new_count == 1, "the new-posts marker")
        assert view(app).current["ref"] == reading  # the reader's selection did not move
        assert "1 new post above" in bar(app)
        await pilot.press("period")
        assert texts(app)[0] == "a live one from bob" and view(app).new_count == 0

        await pilot.press("c")
        await pilot.press(*"hello from the client")
        counter = str(app.screen.query_one("#counter").render())
        assert counter == f"{500 - len('hello from the client')} left"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: a.call("log", limit=1)[0].get("text") == "hello from the client", "the post")
        await until(pilot, lambda: "hello from the client" in texts(app), "own post on the home timeline")


@pytest.mark.slow
@on_asyncio
async def test_thread_reply_boost_favourite(pair) -> None:
    a, b = pair
    app = app_for(a)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("j")  # "bob says 2"
        target = view(app).current
        await pilot.press("f")
        await until(pilot, lambda: view(app).current.get("favourited"), "favourited shown")
        await pilot.press("b")
        await until(pilot, lambda: view(app).current.get("boosted"), "boosted shown")
        await pilot.press("r")
        await pilot.press(*"nice one")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HomeScreen", "back home")
        await until(pilot, lambda: any(i.get("reply_to") == target["ref"] for i in b.call("log", author=a.id)),
                    "the reply at b")
        await until(pilot, lambda: "nice one" in texts(app), "the reply at home")
        view(app).select(texts(app).index("bob says 2 #birds"))  # our boost of it: enter opens the post
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ThreadScreen" and len(view(app).items) == 2,
                    "the thread")
        items = view(app).items
        assert [i["text"] for i in items] == ["bob says 2 #birds", "nice one"] and items[1]["_depth"] == 1
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HomeScreen", "back home")
    post = next(i for i in b.call("log") if i["ref"] == target["ref"])
    assert (post["favourites"], post["boosts"], post["replies"]) == (1, 1, 1)


@pytest.mark.slow
@on_asyncio
async def test_profile_follow_block_mute_and_lists(pair) -> None:
    a, b = pair
    app = app_for(a)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("a")
        await until(pilot, lambda: "birds and #murmurations" in _info(app), "bob's profile")
        assert "you follow them" in _info(app)
        await until(pilot, lambda: len(view(app).items) >= 4, "bob's posts")
        await pilot.press("F")
        await until(pilot, lambda: b.id not in a.call("following"), "unfollowed")
        await pilot.press("F")
        await until(pilot, lambda: b.id in a.call("following"), "followed again")
        await pilot.press("M")
        await until(pilot, lambda: b.id in a.call("mutes")["users"], "muted")
        await pilot.press("B")
        await until(pilot, lambda: "BLOCKED" in _info(app), "blocked")
        assert a.call("profile", id=b.id)["blocked"]
        await pilot.press("B", "M")
        await until(pilot, lambda: not a.call("profile", id=b.id)["blocked"] and not a.call("mutes")["users"],
                    "unblocked and unmuted")
        await pilot.press("escape", "l")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ListsScreen", "lists")
        app.screen.query_one("#edit").focus()
        await pilot.press(*f"add: birds {b.id}", "enter")
        await until(pilot, lambda: a.call("lists") == {"birds": [b.id]}, "the list")
        await until(pilot, lambda: len(texts(app)) >= 4 and "bob says 0 #birds" in texts(app), "the list's timeline")


@pytest.mark.slow
@on_asyncio
async def test_notifications_federated_hashtag_search(pair) -> None:
    a, b = pair
    b.call("post", text=f"hey @{a.id} look", visibility="unlisted")
    wait_until(lambda: a.call("notifications")["items"], what="a notification at a")
    app = app_for(a)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("n")
        await until(pilot, lambda: app.screen.__class__.__name__ == "NotificationsScreen" and view(app).items,
                    "notifications")
        assert view(app).items[0]["_kinds"] == ["mention"] and _on_screen(app, "mentioned you")
        await pilot.press("w")
        await until(pilot, lambda: app.screen.__class__.__name__ == "FederatedScreen" and view(app).items,
                    "federated")
        assert "bob says 0 #birds" in texts(app) and not any("look" in t for t in texts(app))  # unlisted stays out
        await pilot.press("number_sign")
        await pilot.press(*"birds", "enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HashtagScreen" and len(view(app).items) == 3,
                    "#birds")
        await pilot.press("escape", "slash")
        await until(pilot, lambda: app.screen.__class__.__name__ == "SearchScreen", "search")
        await pilot.press(*"bob", "enter")
        await until(pilot, lambda: "bob says 1 #birds" in texts(app), "posts found")
        hits = app.screen.query_one("#hits")
        assert any(b.id in str(hits.get_option_at_index(i).prompt) for i in range(hits.option_count))


@on_asyncio
async def test_peers_settings_conversations_columns_help(pair) -> None:
    a, b = pair
    app = app_for(a)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("p")
        await until(pilot, lambda: b.info["peer_id"] in _static(app, "#status"), "b among the peers")
        assert "peers connected" in _static(app, "#status")
        await pilot.press("s")
        code = a.contact()
        await until(pilot, lambda: code.split("/")[0][:40] in _static(app, "#settings"), "the contact code")
        assert "at most 500 characters" in _static(app, "#settings")
        b.call("post", text="psst, just for you", visibility="direct", to=[a.id])
        wait_until(lambda: a.call("conversations")["items"], what="the direct post opened at a")
        await pilot.press("d")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConversationsScreen", "conversations")
        pane = app.screen.query_one("TimelinePane")
        await until(pilot, lambda: [i.get("text") for i in pane.view.items] == ["psst, just for you"],
                    "the direct post on the conversations screen")
        await pilot.press("m")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ColumnsScreen", "columns")
        panes = list(app.screen.query("TimelinePane"))
        await until(pilot, lambda: all(p.view.items for p in panes), "three columns filled")
        assert [p.title for p in panes] == ["Home", "Notifications", "Federated"]
        await pilot.press("tab")
        assert app.screen.focused is panes[1].view
        b.call("post", text="seen in two columns")
        await until(pilot, lambda: panes[0].view.new_count == 1 and panes[2].view.new_count == 1, "live in columns")
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", "help")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ColumnsScreen", "help closed")


@pytest.mark.slow
@on_asyncio
async def test_a_reply_to_a_direct_post_starts_direct_to_its_author(pair) -> None:
    a, b = pair
    b.call("post", text="psst, just for you", visibility="direct", to=[a.id])
    wait_until(lambda: a.call("conversations")["items"], what="the direct post opened at a")
    app = app_for(a)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("d")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConversationsScreen", "conversations")
        pane = app.screen.query_one("TimelinePane")
        await until(pilot, lambda: pane.view.current is not None, "the direct post selected")
        await pilot.press("r")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ComposeScreen", "compose")
        assert app.screen.query_one("#direct").value and not app.screen.query_one("#public").value
        assert app.screen.query_one("#to").value == b.id
        await pilot.press(*"got it")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConversationsScreen", "sent")
    wait_until(lambda: "got it" in [i.get("text") for i in b.call("conversations")["items"]],
               what="the direct reply read at b")


@on_asyncio
async def test_first_run_creates_identity_starts_daemon_that_outlives_the_client(tmp_path: Path) -> None:
    fresh, other = DaemonProcess(tmp_path, "fresh"), DaemonProcess(tmp_path, "other").init()
    path = socket_path(Home.resolve(str(fresh.home), {}), fresh.env)
    try:
        other.start()
        app = MurmurateApp(launcher=Launcher(str(fresh.home), fresh.env))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.__class__.__name__ == "IdentityScreen", "the identity screen")
            await pilot.click("#nopass")
            assert "stored unencrypted" in _static(app, "#warning")
            await pilot.click("#nopass")
            app.screen.query_one("#pass1").focus()
            await pilot.press(*"correct horse", "enter", *"correct horse", "enter")
            await until(pilot, lambda: app.screen.__class__.__name__ == "WelcomeScreen", "the welcome screen",
                        timeout=60)
            await until(pilot, lambda: _static(app, "#code").startswith("murc_"), "the contact code")
            await pilot.press(*"Fran", "enter")
            app.screen.query_one("#follow").focus()
            await pilot.press(*other.contact(), "enter")
            await until(pilot, lambda: _api(path).call("following") == [other.id], "following other")
            await pilot.click("#done")
            await until(pilot, lambda: app.ready and app.screen.__class__.__name__ == "HomeScreen", "home")
        assert (fresh.home / "identity.key").exists() and app.started_daemon
        client = _api(path)  # the client is gone; its daemon is not
        who = client.call("whoami")
        assert who["key_encrypted"] and client.call("profile")["name"] == "Fran"
        client.call("shutdown")
        wait_until(lambda: ApiClient.connect(path) is None, what="the daemon stopped")
    finally:
        other.close()
        fresh.close()


def _api(path: Path) -> ApiClient:
    client = ApiClient.connect(path)
    assert client is not None
    return client


def _static(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def _info(app) -> str:
    return _static(app, "#info")


def _on_screen(app, text: str) -> bool:
    return text in shown(app)
