"""relay.toml: parse and check a relay's one config file. Pure (text in, RelayConfig out).

Every key is optional except `data_dir`; an unknown key or a value of the wrong kind is a
RelayConfigError that names the key, so a typo never silently falls back to a default.
docs/operations.md has the full reference (keep the two in step).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from murmurate.crypto import InvalidIdError, decode_id

from ..core.budget import RELAY_LIMITS, BudgetError, Limits, parse_limits
from ..core.caps import StorageCaps
from ..errors import UsageError
from ..home import parse_caps


class RelayConfigError(UsageError):
    """relay.toml is malformed or holds a bad value; the message names file and key."""


@dataclass(frozen=True)
class Quota:
    max_entries: int = 100_000          # entries of one user's own feed
    max_bytes: int = 256 * 1024 * 1024  # bytes (entry frames) of one user's own feed
    max_follows: int = 500              # feeds a user follows that the relay hosts for them
    max_blobs: int = 10_000             # media files (blobs) the relay fetches and holds for one user
    max_blob_bytes: int = 1024 ** 3     # bytes of those files


@dataclass(frozen=True)
class RelayConfig:
    data_dir: Path
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001",)
    announce: tuple[str, ...] = ()     # addresses put in invite codes; default: the listen addresses
    peers: tuple[str, ...] = ()        # multiaddrs with /p2p/ dialled at start
    unencrypted_key: bool = False      # must be true: a headless relay has no one to type a passphrase
    resync_s: float = 30.0
    allow: tuple[bytes, ...] = ()      # users admitted without an invite code
    blocked: tuple[bytes, ...] = ()    # served nothing, never hosted
    invite_ttl_s: int = 7 * 24 * 3600
    max_users: int = 1_000
    max_feeds: int = 10_000            # new entries travel over live sync streams, not one topic per feed
    quota: Quota = Quota()
    metrics_listen: str = "127.0.0.1:9464"   # "" turns the HTTP endpoint off
    log_format: str = "json"           # "json" (one object a line) or "text"
    log_level: str = "info"
    store_map_size_mb: int = 64 * 1024
    limits: Limits = RELAY_LIMITS      # [budget]: what remote peers may make the relay hold
    storage: StorageCaps = StorageCaps()   # per-feed and whole-store caps ([store] table)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        if not self.metrics_listen:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)


_TOP = {"data_dir", "listen", "announce", "peers", "unencrypted_key", "resync_s", "admission", "limits",
        "quota", "metrics", "log", "store", "budget"}
_TABLES = {
    "admission": {"allow", "blocked", "invite_ttl_s"},
    "limits": {"max_users", "max_feeds"},
    "quota": {"max_entries", "max_bytes", "max_follows", "max_blobs", "max_blob_bytes"},
    "metrics": {"listen"},
    "log": {"format", "level"},
    "store": {"map_size_mb", "max_feed_entries", "max_feed_mb", "max_store_mb", "min_free_disk_mb"},
}


def load_relay_config(path: str | Path) -> RelayConfig:
    """Read and check relay.toml. Raises RelayConfigError (also for a missing file)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # a cap, so /dev/zero or a huge file is an error
    except OSError as e:
        raise RelayConfigError(f"cannot read {path}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise RelayConfigError(f"{path}: over {MAX_CONFIG_BYTES} bytes; a relay config is a few dozen lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RelayConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse_relay_config(text, str(path), base=path.resolve().parent)


MAX_CONFIG_BYTES = 256 * 1024


def parse_relay_config(text: str, where: str, *, base: Path | None = None) -> RelayConfig:
    """Parse relay.toml text. A relative data_dir is taken from `base` (the file's folder)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RelayConfigError(f"{where}: not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise RelayConfigError(f"{where}: values nested too deeply") from None
    c = _Checker(where)
    c.known(data, _TOP, "")
    for table, keys in _TABLES.items():
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise RelayConfigError(f"{where}: [{table}] must be a table")
        c.known(section, keys, table + ".")
    adm, lim, quo = data.get("admission", {}), data.get("limits", {}), data.get("quota", {})
    met, log, sto = data.get("metrics", {}), data.get("log", {}), data.get("store", {})

    if "data_dir" not in data:
        raise RelayConfigError(f"{where}: data_dir is required (the folder for the relay's key and store)")
    data_dir = Path(c.text(data, "data_dir", "")).expanduser()
    if not data_dir.is_absolute():
        data_dir = (base or Path.cwd()) / data_dir
    if not c.flag(data, "unencrypted_key", False):
        raise RelayConfigError(f"{where}: set unencrypted_key = true: a relay runs unattended, so its key file "
                               "is stored unencrypted (mode 0600); say so explicitly")
    defaults = RelayConfig(data_dir=data_dir)
    metrics_listen = c.text(met, "listen", defaults.metrics_listen, "metrics.", empty_ok=True)
    if metrics_listen:
        host, sep, port = metrics_listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise RelayConfigError(f"{where}: metrics.listen must be HOST:PORT (e.g. 127.0.0.1:9464), "
                                   f"or \"\" for none; got {metrics_listen!r}")
    log_format = c.text(log, "format", defaults.log_format, "log.")
    if log_format not in ("json", "text"):
        raise RelayConfigError(f"{where}: log.format must be \"json\" or \"text\", not {log_format!r}")
    log_level = c.text(log, "level", defaults.log_level, "log.").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise RelayConfigError(f"{where}: log.level must be debug, info, warning or error")
    try:
        limits = parse_limits(data.get("budget", {}), RELAY_LIMITS, where)
    except BudgetError as e:
        raise RelayConfigError(str(e)) from None
    return RelayConfig(
        data_dir=data_dir,
        listen=c.addrs(data, "listen", defaults.listen, nonempty=True),
        announce=c.addrs(data, "announce", ()),
        peers=c.addrs(data, "peers", (), need_p2p=True),
        unencrypted_key=True,
        resync_s=float(c.number(data, "resync_s", defaults.resync_s, 1, 86_400)),
        allow=c.ids(adm, "allow", "admission."),
        blocked=c.ids(adm, "blocked", "admission."),
        invite_ttl_s=int(c.number(adm, "invite_ttl_s", defaults.invite_ttl_s, 60, 366 * 24 * 3600,
                                  "admission.", integer=True)),
        max_users=int(c.number(lim, "max_users", defaults.max_users, 1, 1_000_000, "limits.", integer=True)),
        max_feeds=int(c.number(lim, "max_feeds", defaults.max_feeds, 1, 100_000, "limits.", integer=True)),
        quota=Quota(
            max_entries=int(c.number(quo, "max_entries", Quota.max_entries, 1, 10**9, "quota.", integer=True)),
            max_bytes=int(c.number(quo, "max_bytes", Quota.max_bytes, 1024, 2**50, "quota.", integer=True)),
            max_follows=int(c.number(quo, "max_follows", Quota.max_follows, 0, 1_000, "quota.", integer=True)),
            max_blobs=int(c.number(quo, "max_blobs", Quota.max_blobs, 0, 10**7, "quota.", integer=True)),
            max_blob_bytes=int(c.number(quo, "max_blob_bytes", Quota.max_blob_bytes, 0, 2**50, "quota.",
                                        integer=True)),
        ),
        metrics_listen=metrics_listen,
        log_format=log_format,
        log_level=log_level,
        store_map_size_mb=int(c.number(sto, "map_size_mb", defaults.store_map_size_mb, 1, 16 * 1024 * 1024,
                                       "store.", integer=True)),
        limits=limits,
        storage=_caps(sto, where),
    )


def _caps(store: dict[str, Any], where: str) -> StorageCaps:
    try:
        return parse_caps(store, where)
    except UsageError as e:
        raise RelayConfigError(str(e)) from None


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, what: str) -> RelayConfigError:
        return RelayConfigError(f"{self.where}: {key} {what}")

    def known(self, table: dict[str, Any], keys: set[str], prefix: str) -> None:
        unknown = sorted(set(table) - keys)
        if unknown:
            raise RelayConfigError(f"{self.where}: unknown key {prefix}{unknown[0]} "
                                   f"(known here: {', '.join(sorted(prefix + k for k in keys))})")

    def text(self, table: dict[str, Any], key: str, default: str, prefix: str = "", *, empty_ok: bool = False) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or (not value and not empty_ok):
            raise self.fail(prefix + key, "must be a non-empty string")
        return value

    def flag(self, table: dict[str, Any], key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def number(self, table: dict[str, Any], key: str, default: float, low: float, high: float,
               prefix: str = "", *, integer: bool = False) -> float:
        value = table.get(key, default)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            raise self.fail(prefix + key, f"must be {'an integer' if integer else 'a number'} from {low} to {high}")
        return value

    def addrs(self, table: dict[str, Any], key: str, default: tuple[str, ...], *, nonempty: bool = False,
              need_p2p: bool = False) -> tuple[str, ...]:
        value = table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(a, str) and a.startswith("/") for a in value):
            raise self.fail(key, "must be a list of multiaddrs (strings starting with /)")
        if nonempty and not value:
            raise self.fail(key, "needs at least one address")
        if need_p2p and not all("/p2p/" in a for a in value):
            raise self.fail(key, "addresses need a /p2p/<peer id> part")
        return tuple(value)

    def ids(self, table: dict[str, Any], key: str, prefix: str) -> tuple[bytes, ...]:
        value = table.get(key, [])
        if not isinstance(value, list):
            raise self.fail(prefix + key, "must be a list of user ids (mur_...)")
        out = []
        for item in value:
            try:
                out.append(decode_id(item if isinstance(item, str) else ""))
            except InvalidIdError as e:
                raise self.fail(prefix + key, f"holds {item!r}, not a user id: {e}") from None
        return tuple(out)
