"""End to end in a real terminal: two clients in tmux on two homes; a post typed in one is
read on both screens. Waits poll `tmux capture-pane` against a deadline."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from daemons import DaemonProcess, wait_until

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

SERVER = f"mur-e2e-{uuid.uuid4().hex[:8]}"  # a private tmux server: nothing shared with the user's


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SERVER, *args], capture_output=True, text=True, check=True).stdout


def screen(pane: str) -> str:
    return tmux("capture-pane", "-p", "-J", "-t", pane)


@pytest.mark.slow
def test_a_post_typed_in_one_client_shows_in_both(tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is installed by scripts/system-deps.sh"
    a, b = DaemonProcess(tmp_path, "a").init(), DaemonProcess(tmp_path, "b").init()
    session = f"mur-{uuid.uuid4().hex[:8]}"
    try:
        a.start()
        b.start()
        b.call("follow", id=a.contact())

        def client(node: DaemonProcess) -> str:
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in node.env.items()
                           if k in ("MURMURATE_HOME", "XDG_RUNTIME_DIR", "PATH", "HOME"))
            return f"env {env} TERM=xterm-256color {shlex.quote(sys.executable)} -m murmurate.ui.cli tui"
        tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", client(a))
        tmux("new-window", "-t", session, client(b))  # a second window of the same size
        pane_a, pane_b = f"{session}:0", f"{session}:1"
        wait_until(lambda: "Home ·" in screen(pane_a) and "Home ·" in screen(pane_b), what="both clients up")
        tmux("send-keys", "-t", pane_a, "c")
        wait_until(lambda: "left" in screen(pane_a), what="the compose screen")
        tmux("send-keys", "-t", pane_a, "-l", "typed in tmux #e2e")
        wait_until(lambda: "482 left" in screen(pane_a), what="the counter")
        tmux("send-keys", "-t", pane_a, "C-s")
        wait_until(lambda: "typed in tmux #e2e" in screen(pane_a) and "Home ·" in screen(pane_a),
                   what="the post on a's home")
        wait_until(lambda: "typed in tmux #e2e" in screen(pane_b), what="the post on b's screen")
        tmux("send-keys", "-t", pane_a, "q")
        tmux("send-keys", "-t", pane_b, "q")
        assert a.call("ping") == "pong"  # quitting the client leaves the daemon running
    finally:
        subprocess.run(["tmux", "-L", SERVER, "kill-server"], capture_output=True)
        a.close()
        b.close()
