"""Find this home's daemon, or create the identity and start one in the background.

Identity creation goes through `murmurate init` in a subprocess (so this process never opens
the store), and the daemon is started detached (its own session, its log in the home) so a
crash or exit of the client never stops replication.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from murmurate.crypto.keyfile import is_encrypted
from murmurate.node.home import Home, socket_path

from .client import AsyncApi

START_DEADLINE_S = 60.0


class LaunchError(Exception):
    """Creating the identity or starting the daemon failed; the message says why."""


@dataclass(frozen=True)
class Launcher:
    home_arg: str | None
    env: dict[str, str]

    @property
    def home(self) -> Home:
        return Home.resolve(self.home_arg, self.env)

    @property
    def log_file(self) -> Path:
        return self.home.data_dir / "daemon.log"

    def has_identity(self) -> bool:
        return self.home.key_file.exists()

    def key_encrypted(self) -> bool:
        return is_encrypted(self.home.key_file.read_bytes())

    def _cli(self) -> list[str]:
        base = [sys.executable, "-m", "murmurate.ui.cli"]
        return base + (["--home", self.home_arg] if self.home_arg else [])

    def _env(self, passphrase: str | None) -> dict[str, str]:
        env = {k: v for k, v in self.env.items() if k != "MURMURATE_PASSPHRASE"}
        if passphrase is not None:
            env["MURMURATE_PASSPHRASE"] = passphrase
        return env

    def init_identity(self, passphrase: str | None) -> str:
        """Blocking: `murmurate init`. Raises LaunchError with the CLI's message."""
        args = self._cli() + ["init"] + (["--no-passphrase"] if passphrase is None else [])
        proc = subprocess.run(args, env=self._env(passphrase), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise LaunchError(proc.stderr.strip() or "murmurate init failed")
        return proc.stdout.strip()

    async def connect(self) -> AsyncApi | None:
        return await AsyncApi.open(socket_path(self.home, self.env))

    async def start_daemon(self, passphrase: str | None) -> AsyncApi:
        """Start `murmurate daemon` detached and wait for its socket. Raises LaunchError with
        the end of its log if it exits first."""
        self.home.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(self._cli() + ["daemon"], env=self._env(passphrase),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                    start_new_session=True)
        end = time.monotonic() + START_DEADLINE_S
        while True:
            api = await self.connect()
            if api is not None:
                return api
            if proc.poll() is not None:
                raise LaunchError(f"the daemon stopped: {self.log_tail()}")
            if time.monotonic() > end:
                raise LaunchError(f"the daemon did not open its socket within {START_DEADLINE_S:.0f} s")
            await asyncio.sleep(0.05)  # the daemon offers no readiness pipe we could await

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"


def environ_copy() -> dict[str, str]:
    return dict(os.environ)
