"""Real daemons in separate processes for multi-node tests.

Each `DaemonProcess` has its own home and runtime folder, listens on 127.0.0.1 (or the
address given), and is driven through its local API. Waiting is always on a condition with
a deadline: a line on stderr, a notification, or a status that changes.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from murmurate.ui.api_client import ApiClient

T = TypeVar("T")
DEADLINE = 30.0
# Every daemon a test starts, so conftest.py can print their logs when the test fails.
STARTED: list["DaemonProcess"] = []


def wait_until(condition: Callable[[], T], timeout: float = DEADLINE, what: str = "condition") -> T:
    """Re-check `condition` (every 20 ms) until it returns something true; fail after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class DaemonProcess:
    python = sys.executable  # the interpreter that runs murmurate (bench/hostile.py may run another checkout's)

    def __init__(self, root: Path, name: str, *, listen: str = "/ip4/127.0.0.1/tcp/0",
                 extra_args: tuple[str, ...] = (), netns: str | None = None) -> None:
        self.name = name
        self.home = root / name
        self.listen = listen
        self.extra_args = extra_args
        self.netns = netns
        # AF_UNIX paths are limited to 107 bytes: keep the runtime folder short.
        self.runtime = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))
        self.proc: subprocess.Popen[str] | None = None
        self.client: ApiClient | None = None
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.info: dict[str, Any] = {}
        STARTED.append(self)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MURMURATE_HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.runtime),
                "MURMURATE_INSECURE_FAST_KDF": "1", "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.python, "-m", "murmurate.ui.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"murmurate {' '.join(args)} failed: {proc.stderr}")
        return proc

    def init(self) -> "DaemonProcess":
        self.cli("init", "--no-passphrase")
        return self

    def command(self, *more: str) -> list[str]:
        """The process to start (a relay overrides this)."""
        cmd = [self.python, "-m", "murmurate.ui.cli", "daemon", "--listen", self.listen,
               *self.extra_args, *more]
        return ["ip", "netns", "exec", self.netns, *cmd] if self.netns else cmd

    def start(self, *more: str) -> "DaemonProcess":
        self.proc = subprocess.Popen(self.command(*more), env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        self.wait_for_log("ready:")
        self.client = self._connect()
        self.info = self.call("whoami")
        return self

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for_log(self, needle: str, timeout: float = DEADLINE) -> str:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.name}: no log line with {needle!r} within {timeout} s; "
                                     f"log so far:\n" + "\n".join(self.log[-30:])) from None
            if line is None:
                raise AssertionError(f"{self.name}: daemon exited; log:\n" + "\n".join(self.log[-30:]))
            self.log.append(line)
            if needle in line:
                return line

    def _connect(self) -> ApiClient:
        from murmurate.node.home import Home, socket_path
        path = socket_path(Home.resolve(str(self.home), {}), self.env)
        client = wait_until(lambda: ApiClient.connect(path), 10, f"{self.name}'s API socket")
        return client

    def call(self, method: str, **params: Any) -> Any:
        assert self.client is not None, f"{self.name} is not running"
        return self.client.call(method, **params)

    def subscribe(self) -> ApiClient:
        """A second connection with a subscription to every stored entry."""
        client = self._connect()
        client.call("subscribe")
        return client

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def addr(self) -> str:
        return next(a for a in self.info["addrs"] if "/ip4/127.0.0.1/" in a or self.netns)

    def contact(self) -> str:
        return self.call("contact")["code"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout} s after signal {sig}")
        self._drain_log()
        self.proc = None
        return code

    def _drain_log(self) -> None:
        """Collect the rest of the log of a process that has exited."""
        while True:
            try:
                line = self._lines.get(timeout=5.0)
            except queue.Empty:
                return
            if line is None:
                return
            self.log.append(line)

    def log_so_far(self) -> list[str]:
        """The log up to now, without waiting (for a failing test's report)."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return self.log
            if line is None:
                self._lines.put(None)  # keep the end mark for _drain_log
                return self.log
            self.log.append(line)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._drain_log()
        if self.client is not None:
            self.client.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


def feed_seqs(node: DaemonProcess, author: str, limit: int = 500) -> list[int]:
    return sorted(item["seq"] for item in node.call("log", author=author, limit=limit))
