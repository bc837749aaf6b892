"""Where a node keeps its files, and its config. Every path can be overridden.

Without --home: data in $XDG_DATA_HOME/murmurate (~/.local/share/murmurate), config in
$XDG_CONFIG_HOME/murmurate/config.toml. With --home DIR (or MURMURATE_HOME): everything
in DIR, so several nodes can live on one machine.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .core.budget import BudgetError, Limits, parse_limits
from .core.caps import MIB, StorageCaps
from .core.text import DEFAULT_MAX_CHARS
from .errors import UsageError


@dataclass(frozen=True)
class Config:
    max_post_chars: int = DEFAULT_MAX_CHARS
    store_map_size_mb: int = 64 * 1024
    limits: Limits = Limits()  # [budget]: what remote peers may make the daemon hold
    caps: StorageCaps = StorageCaps()  # [store] storage caps (node/core/caps.py)


@dataclass(frozen=True)
class Home:
    data_dir: Path
    config_file: Path

    @property
    def key_file(self) -> Path:
        return self.data_dir / "identity.key"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None, env: Mapping[str, str]) -> "Home":
        chosen = home or env.get("MURMURATE_HOME")
        if chosen:
            base = Path(chosen).expanduser()
            return cls(base, base / "config.toml")
        data = Path(env.get("XDG_DATA_HOME") or Path(env.get("HOME", "~")) / ".local/share").expanduser()
        config = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")) / ".config").expanduser()
        return cls(data / "murmurate", config / "murmurate" / "config.toml")

    def load_config(self) -> Config:
        """Read config.toml if there is one. Raises UsageError on a malformed file."""
        where = str(self.config_file)
        try:
            with open(self.config_file, "rb") as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)  # a cap, so /dev/zero or a huge file is an error
        except FileNotFoundError:
            return Config()
        except OSError as e:
            raise UsageError(f"{where}: cannot read it ({e.strerror})") from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise UsageError(f"{where}: over {MAX_CONFIG_BYTES} bytes; a config file is a few lines")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise UsageError(f"{where}: not UTF-8 text (byte {e.start})") from None
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"{where}: {e}") from None
        except RecursionError:  # tomllib recurses once per level of nesting
            raise UsageError(f"{where}: values nested too deeply") from None
        return parse_config(data, where)


MAX_CONFIG_BYTES = 64 * 1024


def parse_config(data: dict[str, Any], where: str) -> Config:
    post = _section(data, "post", where)
    store = _section(data, "store", where)
    max_chars = post.get("max_chars", DEFAULT_MAX_CHARS)
    map_size = store.get("map_size_mb", Config.store_map_size_mb)
    if not _is_int(max_chars) or not 1 <= max_chars <= 5000:
        raise UsageError(f"{where}: post.max_chars must be an integer from 1 to 5000")
    if not _is_int(map_size) or not 1 <= map_size <= 16 * 1024 * 1024:
        raise UsageError(f"{where}: store.map_size_mb must be a positive integer (MiB)")
    try:
        limits = parse_limits(data.get("budget", {}), Limits(), where)
    except BudgetError as e:
        raise UsageError(str(e)) from None
    return Config(max_chars, map_size, limits, parse_caps(store, where))


def parse_caps(store: dict[str, Any], where: str) -> StorageCaps:
    """The storage caps in a config's [store] table (config.toml and relay.toml alike)."""
    d = StorageCaps()

    def number(key: str, default: int, low: int, high: int) -> int:
        value = store.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UsageError(f"{where}: store.{key} must be an integer from {low} to {high}")
        return value

    return StorageCaps(
        max_feed_entries=number("max_feed_entries", d.max_feed_entries, 1, 10**10),
        max_feed_bytes=number("max_feed_mb", d.max_feed_bytes // MIB, 1, 16 << 20) * MIB,
        max_store_bytes=number("max_store_mb", d.max_store_bytes // MIB, 0, 16 << 20) * MIB,
        min_free_disk_bytes=number("min_free_disk_mb", d.min_free_disk_bytes // MIB, 0, 16 << 20) * MIB,
    )


def _section(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):  # `post = 5` or `[[post]]`
        raise UsageError(f"{where}: {name} must be a table ([{name}]), not {type(value).__name__}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def runtime_dir(env: Mapping[str, str]) -> Path:
    """Where sockets live: $XDG_RUNTIME_DIR, else a private folder in /tmp (mode 0700)."""
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg)
    path = Path("/tmp") / f"murmurate-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise UsageError(f"{path} is not private to this user; set XDG_RUNTIME_DIR")
    return path


def socket_path(home: Home, env: Mapping[str, str]) -> Path:
    """The local API socket of the daemon for `home`. Named by a hash of the data folder so
    several homes can run daemons side by side (and the path stays short for AF_UNIX)."""
    import hashlib
    digest = hashlib.blake2b(str(home.data_dir.resolve()).encode(), digest_size=6).hexdigest()
    return runtime_dir(env) / f"murmurate-{digest}.sock"
