"""First run: create the identity (before any daemon exists), then a short welcome that needs
the daemon: display name, contact code, follow someone, a peer to connect to."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Static

from .launch import Launcher, LaunchError


class IdentityScreen(Screen[None]):
    def __init__(self, launcher: Launcher) -> None:
        super().__init__()
        self.launcher = launcher

    def compose(self) -> ComposeResult:
        yield Static("Murmurate · Welcome", classes="topbar")
        with VerticalScroll(classes="form"):
            yield Static("No identity exists for this home yet. Your identity is a key that stays on this "
                         f"machine ({self.launcher.home.key_file}). Choose a passphrase to encrypt it.")
            yield Input(placeholder="passphrase", password=True, id="pass1")
            yield Input(placeholder="passphrase again", password=True, id="pass2")
            yield Checkbox("No passphrase", id="nopass")
            yield Static("", id="warning")
            yield Button("Create my identity", id="create", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pass1", Input).focus()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.query_one("#warning", Static).update(
            "[b]Warning:[/b] without a passphrase the key is stored unencrypted: anyone who can read this "
            "disk can post as you. Only for machines you alone use." if event.value else "")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "pass1":
            self.query_one("#pass2", Input).focus()
        else:
            await self.create()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            await self.create()

    async def create(self) -> None:
        passphrase: str | None = None
        if not self.query_one(Checkbox).value:
            passphrase = self.query_one("#pass1", Input).value
            if not passphrase:
                self.notify("Type a passphrase, or tick “No passphrase”", severity="error")
                return
            if passphrase != self.query_one("#pass2", Input).value:
                self.notify("The two passphrases differ", severity="error")
                return
        self.query_one(Button).disabled = True
        self.notify("Creating your identity…")
        try:
            await asyncio.to_thread(self.launcher.init_identity, passphrase)
            if passphrase is not None:
                # The daemon about to start needs it once; it is never written anywhere.
                self.app.launcher_passphrase = passphrase
        except LaunchError as e:
            self.notify(str(e), severity="error", timeout=15)
            self.query_one(Button).disabled = False
            return
        self.dismiss(None)


class UnlockScreen(Screen[str]):
    def compose(self) -> ComposeResult:
        yield Static("Murmurate · Unlock", classes="topbar")
        with VerticalScroll(classes="form"):
            yield Static("No daemon runs for this home, and your key is encrypted. Its passphrase starts the "
                         "daemon in the background (it keeps running after you quit).")
            yield Input(placeholder="passphrase, then Enter", password=True, id="pass")
        yield Footer()

    def on_mount(self) -> None:
        given = getattr(self.app, "launcher_passphrase", None)
        if given:
            self.app.launcher_passphrase = None
            self.dismiss(given)
        else:
            self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class WelcomeScreen(Screen[None]):
    DEFAULT_CSS = """
    WelcomeScreen Horizontal { height: auto; }
    WelcomeScreen Horizontal Input { width: 1fr; }
    WelcomeScreen #code { padding: 0 0 1 0; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Murmurate · Getting started", classes="topbar")
        with VerticalScroll(classes="form"):
            yield Static("1. Your display name (a label: people tell you apart by your fingerprint)")
            with Horizontal():
                yield Input(placeholder="display name", id="name")
                yield Button("Save", id="save-name")
            yield Static("2. Your contact code: give it to people so they can follow you")
            yield Static("…", id="code")
            yield Button("Copy contact code", id="copy")
            yield Static("3. Follow someone: paste their contact code (murc_…) or id (mur_…)")
            with Horizontal():
                yield Input(placeholder="murc_… or mur_…", id="follow")
                yield Button("Follow", id="do-follow")
            yield Static("4. A peer to connect to (an address /ip4/…/tcp/…/p2p/12D3KooW…): optional; "
                         "relays come later, for now this is a peer your node dials")
            with Horizontal():
                yield Input(placeholder="/ip4/…/tcp/…/p2p/…", id="peer")
                yield Button("Connect", id="do-peer")
            yield Button("Done: show my home timeline", id="done", variant="primary")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        contact = await self.app.call("contact")
        if contact is not None:
            self.code = contact["code"]
            self.query_one("#code", Static).update(contact["code"])

    async def _do(self, which: str) -> None:
        if which in ("name", "save-name"):
            name = self.query_one("#name", Input).value.strip()
            if name and await self.app.call("set_profile", name=name) is not None:
                self.app.me = {**self.app.me, "name": name}
                self.notify(f"Display name set: {name}")
                self.query_one("#follow", Input).focus()
        elif which in ("follow", "do-follow"):
            field = self.query_one("#follow", Input)
            item: Any = await self.app.call("follow", id=field.value.strip()) if field.value.strip() else None
            if item is not None:
                self.notify(f"Following {item['target'][:20]}…")
                field.value = ""
        elif which in ("peer", "do-peer"):
            field = self.query_one("#peer", Input)
            r = await self.app.call("connect", addr=field.value.strip()) if field.value.strip() else None
            if r is not None:
                self.notify(f"Connected to {r['peer_id']}")
                field.value = ""
        elif which == "copy":
            self.app.copy_to_clipboard(getattr(self, "code", ""))
            self.notify("Contact code copied")
        elif which == "done":
            self.dismiss(None)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        await self._do(event.input.id or "")

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        await self._do(event.button.id or "")
