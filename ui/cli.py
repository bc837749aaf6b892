"""The `murmurate` command line.

Errors go to stderr as one line with a non-zero exit; a Python traceback only with
--debug. Passphrases come from --passphrase-file, then MURMURATE_PASSPHRASE, then a
prompt on the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from murmurate.crypto import CryptoError, KdfParams, SigningIdentity

from . import render
from .api_client import ApiClient, ApiError


class CliError(Exception):
    """A problem to report to the user in one line."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="murmurate", description="A peer-to-peer social network: your node, your feed.")
    p.add_argument("--home", help="folder for all of this node's state (default: XDG paths; env MURMURATE_HOME)")
    p.add_argument("--passphrase-file", help="read the key passphrase from this file (first line)")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("init", help="create this node's identity")
    s.add_argument("--no-passphrase", action="store_true",
                   help="store the key unencrypted (only for headless nodes on a trusted disk)")
    sub.add_parser("whoami", help="print this node's id").add_argument("--json", action="store_true")

    s = sub.add_parser("post", help="write a post (TEXT '-' reads standard input)")
    s.add_argument("text")
    s.add_argument("--cw", help="content warning shown before the text")
    s.add_argument("--reply-to", metavar="REF", help="the post replied to, as <id>/<seq>")
    s.add_argument("--quote", metavar="REF", help="a post to quote, as <id>/<seq>")
    s.add_argument("--lang", help="language tag, e.g. en")
    s.add_argument("--visibility", choices=("public", "unlisted", "followers", "direct"), default="public",
                   help="unlisted: not in hashtag or federated timelines; followers: only accepted followers "
                        "can read it; direct: only the --to recipients can")
    s.add_argument("--to", action="append", metavar="ID", help="a recipient of a direct post (repeatable)")
    s.add_argument("--media", action="append", metavar="FILE", help="attach a file (up to 4; needs the daemon)")
    s.add_argument("--alt", action="append", metavar="TEXT", help="alt text for each --media, in order")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("log", help="one author's feed, newest first (default: your own)")
    s.add_argument("--author", metavar="ID")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("timeline", help="home timeline: you and the people you follow")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--federated", action="store_true", help="everything this node holds")
    which.add_argument("--local", action="store_true",
                       help="people near this node: found on the LAN, or sharing a relay with you")
    which.add_argument("--tag", help="posts with this hashtag")
    which.add_argument("--list", help="the members of one of your lists")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--cursor", help="continue after a previous page (printed at its end)")
    s.add_argument("--json", action="store_true")

    for verb, what in (("boost", "boost a post"), ("unboost", "take a boost back"),
                       ("favourite", "favourite a post"), ("unfavourite", "take a favourite back"),
                       ("delete", "delete one of your entries everywhere"), ("thread", "the whole conversation"),
                       ("history", "every version of an edited post")):
        sub.add_parser(verb, help=what).add_argument("ref", help="<id>/<seq>")
    s = sub.add_parser("edit", help="edit one of your posts (the history stays visible)")
    s.add_argument("ref")
    s.add_argument("text")
    s.add_argument("--cw")
    s = sub.add_parser("profile", help="show a profile (default: yours)")
    s.add_argument("id", nargs="?")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("set-profile", help="change your display name, bio, relays, pinned posts")
    s.add_argument("--name")
    s.add_argument("--bio")
    s.add_argument("--relay", action="append", help="where your feed can be fetched (repeatable)")
    s.add_argument("--pin", action="append", metavar="REF", help="pin a post (repeatable)")
    sub.add_parser("accept", help="accept a follower: they can read your followers-only posts").add_argument("id")
    sub.add_parser("remove-follower", help="remove an accepted follower (new posts use a new key)").add_argument("id")
    sub.add_parser("circle", help="your accepted followers").add_argument("--json", action="store_true")
    s = sub.add_parser("blob", help="save a post's media to a file (fetched from peers if needed)")
    s.add_argument("hash")
    s.add_argument("out")
    s = sub.add_parser("conversations", help="direct posts you sent or received")
    s.add_argument("--json", action="store_true")
    sub.add_parser("block", help="block someone (public, in your feed)").add_argument("id")
    sub.add_parser("unblock", help="unblock someone").add_argument("id")
    for verb in ("mute", "unmute"):
        s = sub.add_parser(verb, help=f"{verb} a user, a word or a thread (only on this node)")
        s.add_argument("kind", choices=("user", "word", "thread"))
        s.add_argument("value")
    sub.add_parser("mutes", help="what you muted").add_argument("--json", action="store_true")
    s = sub.add_parser("list", help="manage lists: list add NAME ID, list remove NAME ID")
    s.add_argument("action", choices=("add", "remove"))
    s.add_argument("name")
    s.add_argument("id")
    sub.add_parser("lists", help="your lists").add_argument("--json", action="store_true")
    s = sub.add_parser("notifications", help="replies, mentions, boosts, favourites, new followers")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("search", help="people, hashtags and posts")
    s.add_argument("query")
    s.add_argument("--json", action="store_true")
    sub.add_parser("follow", help="follow someone by id").add_argument("id")
    sub.add_parser("unfollow", help="stop following someone").add_argument("id")
    sub.add_parser("following", help="list who you follow").add_argument("--json", action="store_true")
    sub.add_parser("export", help="write every feed this node holds to FILE").add_argument("file")
    sub.add_parser("import", help="verify FILE whole, then add its feeds").add_argument("file")
    sub.add_parser("verify", help="re-check every stored entry").add_argument("--json", action="store_true")
    sub.add_parser("tour", help="a five-minute tour in a throw-away folder")
    sub.add_parser("tui", help="the terminal client (also: murmurate with no command)")

    s = sub.add_parser("daemon", help="run the node in the foreground (network + local API)")
    s.add_argument("--listen", action="append", metavar="MULTIADDR",
                   help="address to listen on (repeatable; default /ip4/0.0.0.0/tcp/0)")
    s.add_argument("--peer", action="append", metavar="MULTIADDR", help="a peer to dial at start (repeatable)")
    s.add_argument("--bootstrap", metavar="FILE", help="bootstrap peers file (default: bootstrap_peers.toml)")
    s.add_argument("--mdns", action="store_true", help="find peers on the LAN with mDNS")
    s.add_argument("--resync", type=float, default=30.0, metavar="SECONDS",
                   help="catch up with every connected peer this often (default 30)")
    s.add_argument("--gossip-topics", type=int, default=0, metavar="N",
                   help="also use GossipSub for the first N wanted feeds (at most 500; default 0: "
                        "new entries travel over the live sync streams only)")
    sub.add_parser("contact", help="print your contact code (id + addresses) to share")
    sub.add_parser("peers", help="peers known and connected").add_argument("--json", action="store_true")
    sub.add_parser("status", help="connections and how far behind each followed feed is").add_argument(
        "--json", action="store_true")
    sub.add_parser("connect", help="dial a peer now").add_argument("addr")

    s = sub.add_parser("relay", help="run a relay (--config relay.toml), or join one (relay add CODE)",
                       description="Operator: `relay --config FILE` runs it; `relay init|invite|users --config FILE`. "
                                   "User: `relay add CODE` joins a relay; `relay status` shows your accounts.")
    s.add_argument("action", nargs="?", default="run", choices=RELAY_ACTIONS)
    s.add_argument("code", nargs="?", help="for add: the relay code (murr_...) the operator gave you")
    s.add_argument("--config", metavar="FILE", help="the relay's relay.toml (docs/operations.md)")
    s.add_argument("--ttl", type=int, metavar="SECONDS", help="invite: lifetime of the code (default: relay.toml)")
    s.add_argument("--no-token", action="store_true",
                   help="invite: a code without a token, for users on the allowlist")
    s.add_argument("--json", action="store_true")
    return p


RELAY_ACTIONS = ("run", "init", "invite", "users", "add", "status")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         env: dict[str, str] | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    environ = dict(os.environ) if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "tui"):
        return _tui(args, environ)
    # Imported here, not at the top: the terminal client (above) needs none of the node and
    # store, and importing them cost 170-330 ms of its start (bench/tui.py).
    from murmurate.node import Home, LocalNode, NodeError
    from murmurate.node.home import socket_path
    from murmurate.store import StoreError
    try:
        if args.command == "tour":
            from .tour import run_tour
            return run_tour(out)
        if args.command == "relay" and args.action not in ("add", "status"):
            return _relay(args, environ, out, err)
        node = LocalNode(Home.resolve(args.home, environ), now_ms=lambda: int(time.time() * 1000),
                         random_bytes=os.urandom)
        try:
            if args.command == "daemon":
                return _daemon(args, node, environ, err)
            client = None if args.command == "init" else ApiClient.connect(socket_path(node.home, environ))
            if client is not None:
                try:
                    return _run(args, _Remote(client), out, environ)
                finally:
                    client.close()
            if args.command in DAEMON_ONLY:
                raise CliError("no daemon runs for this home: start one with `murmurate daemon`")
            return _run(args, _Local(node, args, environ), out, environ)
        finally:
            node.close()
    except KeyboardInterrupt:
        print("murmurate: interrupted", file=err)
        return 130
    except (CliError, NodeError, CryptoError, StoreError, OSError, ApiError) as e:
        if args.debug:
            raise
        print(f"murmurate: error: {_describe(e)}", file=err)
        return 1


def _describe(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


DAEMON_ONLY = ("contact", "peers", "status", "connect", "relay")


class _Local:
    """The verbs on the store in this process (no daemon runs)."""

    def __init__(self, node: LocalNode, args: argparse.Namespace, environ: dict[str, str]) -> None:
        self.node, self.args, self.environ = node, args, environ

    def call(self, method: str, **p: Any) -> Any:
        node = self.node
        params = {k: v for k, v in p.items() if v is not None}
        if method in node.WRITE_VERBS:
            return node.act(_unlock(node, self.args, self.environ), method, params)
        if method in node.READ_VERBS:
            return node.read(method, params)
        if method == "export":
            return node.export(p["file"])
        if method == "import":
            return node.import_(p["file"])
        raise CliError(f"{method} needs a running daemon")


class _Remote:
    """The same verbs through the daemon's local API."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def call(self, method: str, **p: Any) -> Any:
        return self.client.call(method, **p)


def _run(args: argparse.Namespace, node: Any, out: TextIO, environ: dict[str, str]) -> int:
    verb = VERBS.get(args.command)
    if verb is None:
        raise CliError(f"unknown command {args.command}")
    return verb(Call(args, node, out, environ, int(time.time() * 1000)))


@dataclass(frozen=True)
class Call:
    """One command being run: its arguments, the node (local or through the daemon), where
    to print, the environment, and the time it started (for "3 min ago")."""

    args: argparse.Namespace
    node: Any
    out: TextIO
    environ: dict[str, str]
    now: int

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def emit(self, value: Any, human: Callable[[Any], str]) -> None:
        _emit(self.out, value, self.args.json, human)


def _init(c: Call) -> int:
    passphrase = None if c.args.no_passphrase else _new_passphrase(c.args, c.environ)
    who = c.node.node.init(passphrase, kdf=_kdf(c.environ))
    c.say(f"created identity {who['id']}")
    c.say(f"fingerprint {who['fingerprint']}; key file {c.node.node.home.key_file}"
          + ("" if who["key_encrypted"] else " (NOT encrypted)"))
    return 0


def _whoami(c: Call) -> int:
    c.emit(c.node.call("whoami"), lambda w: f"{w['id']}\nfingerprint {w['fingerprint']}  home {w['home']}")
    return 0


def _post(c: Call) -> int:
    a = c.args
    text = sys.stdin.read() if a.text == "-" else a.text
    media = None
    if a.media:
        alts = (a.alt or []) + [""] * len(a.media)
        media = [c.node.call("attach", path=str(Path(f).resolve()), alt=alt) for f, alt in zip(a.media, alts)]
    item = c.node.call("post", text=text, cw=a.cw, reply_to=a.reply_to, lang=a.lang, visibility=a.visibility,
                       to=a.to, media=media, quote=a.quote)
    c.emit(item, lambda i: f"posted {i['ref']}")
    return 0


def _follow(c: Call) -> int:
    c.say(f"following {c.node.call('follow', id=c.args.id)['target']}")
    return 0


def _unfollow(c: Call) -> int:
    c.say(f"no longer following {c.node.call('unfollow', id=c.args.id)['target']}")
    return 0


def _log(c: Call) -> int:
    items = c.node.call("log", author=c.args.author, limit=_limit(c.args.limit))
    c.emit(items, lambda xs: render.entries(xs, c.now) or "(no entries)")
    return 0


def _timeline(c: Call) -> int:
    a = c.args
    which = ("federated" if a.federated else "local" if a.local else "hashtag" if a.tag
             else "list" if a.list else "home")
    page = c.node.call("timeline", which=which, tag=a.tag, list=a.list, limit=_limit(a.limit), cursor=a.cursor)
    c.emit(page, lambda p: render.timeline(p, c.now))
    return 0


def _following(c: Call) -> int:
    c.emit(c.node.call("following"), lambda xs: "\n".join(xs) or "(you follow no one yet)")
    return 0


def _export(c: Call) -> int:
    r = c.node.call("export", file=str(Path(c.args.file).resolve()))
    c.say(f"exported {r['entries']} entries of {r['feeds']} feeds to {r['file']} ({r['bytes']} bytes)")
    return 0


def _import(c: Call) -> int:
    r = c.node.call("import", file=str(Path(c.args.file).resolve()))
    c.say(f"checked {r['entries']} entries of {r['feeds']} feeds: {r['new']} new, "
          f"{r['already_had']} already here, {r['refused']} refused, {r['forks']} forks")
    return 0 if r["refused"] == 0 and r["forks"] == 0 else 1


def _verify(c: Call) -> int:
    r = c.node.call("verify")
    c.emit(r, lambda v: "\n".join(
        [f"checked {v['entries']} entries in {v['feeds']} feeds: "
         + ("all good" if not v["problems"] else f"{len(v['problems'])} problems")] + v["problems"]))
    return 0 if not r["problems"] else 1


def _on_a_post(c: Call) -> int:
    """boost, unboost, favourite, unfavourite, delete: one ref, one new entry."""
    item = c.node.call(c.args.command, ref=c.args.ref)
    c.say(f"{c.args.command}: done ({item['ref']})")
    return 0


def _edit(c: Call) -> int:
    item = c.node.call("edit", ref=c.args.ref, text=c.args.text, cw=c.args.cw)
    c.say(f"edited {c.args.ref} ({item['ref']})")
    return 0


def _thread(c: Call) -> int:
    c.say(render.thread(c.node.call("thread", ref=c.args.ref), c.now))
    return 0


def _history(c: Call) -> int:
    for v in c.node.call("history", ref=c.args.ref):
        c.say(f"{render.relative_time(v['timestamp_ms'], c.now)}: {v['text']}")
    return 0


def _profile(c: Call) -> int:
    c.emit(c.node.call("profile", id=c.args.id), render.profile)
    return 0


def _set_profile(c: Call) -> int:
    a = c.args
    item = c.node.call("set_profile", name=a.name, bio=a.bio, relays=a.relay, pinned=a.pin)
    c.say(f"profile updated ({item['ref']})")
    return 0


def _accept(c: Call) -> int:
    c.node.call("accept_follower", id=c.args.id)
    c.say(f"accepted {c.args.id.strip()}")
    return 0


def _remove_follower(c: Call) -> int:
    c.node.call("remove_follower", id=c.args.id)
    c.say(f"removed {c.args.id.strip()}")
    return 0


def _blob(c: Call) -> int:
    r = c.node.call("blob", hash=c.args.hash, out=str(Path(c.args.out).resolve()))
    c.say(f"saved {r['size']} bytes to {r['out']}")
    return 0


def _circle(c: Call) -> int:
    c.emit(c.node.call("circle"), lambda xs: "\n".join(xs) or "(no accepted followers yet)")
    return 0


def _conversations(c: Call) -> int:
    c.emit(c.node.call("conversations"), lambda p: render.timeline(p, c.now))
    return 0


def _block(c: Call) -> int:
    """block, unblock."""
    c.node.call(c.args.command, id=c.args.id)
    c.say(f"{c.args.command}ed {c.args.id.strip()}")
    return 0


def _mute(c: Call) -> int:
    """mute, unmute."""
    c.node.call(c.args.command, kind=c.args.kind, value=c.args.value)
    c.say(f"{c.args.command}d {c.args.kind} {c.args.value}")
    return 0


def _mutes(c: Call) -> int:
    c.emit(c.node.call("mutes"), lambda m: json.dumps(m, indent=2, ensure_ascii=False))
    return 0


def _list(c: Call) -> int:
    a = c.args
    c.node.call("list_add" if a.action == "add" else "list_remove", name=a.name, id=a.id)
    c.say(f"list {a.name}: {a.action} {a.id}")
    return 0


def _lists(c: Call) -> int:
    c.emit(c.node.call("lists"), lambda m: "\n".join(
        f"{name}: {len(members)} members" for name, members in m.items()) or "(no lists)")
    return 0


def _notifications(c: Call) -> int:
    c.emit(c.node.call("notifications", limit=_limit(c.args.limit)), lambda n: render.notifications(n, c.now))
    return 0


def _search(c: Call) -> int:
    c.emit(c.node.call("search", query=c.args.query), lambda r: render.search(r, c.now))
    return 0


def _contact(c: Call) -> int:
    c.say(c.node.call("contact")["code"])
    return 0


def _peers(c: Call) -> int:
    c.emit(c.node.call("peers"), render.peers)
    return 0


def _status(c: Call) -> int:
    c.emit(c.node.call("status"), render.status)
    return 0


def _connect(c: Call) -> int:
    c.say(f"connected to {c.node.call('connect', addr=c.args.addr)['peer_id']}")
    return 0


def _relay_user(c: Call) -> int:
    """A user's side of relays: `relay add CODE`, `relay status` (the operator's is _relay)."""
    if c.args.action == "status":
        c.emit(c.node.call("relay_status"), _relay_rows)
        return 0
    if not c.args.code:
        raise CliError("relay add needs the relay code (murr_...) its operator gave you")
    r = c.node.call("relay_add", code=c.args.code)
    c.emit(r, lambda r: f"joined relay {r['relay']}: it hosts your feed "
           f"(quota {r['account']['max_entries']} entries, {r['account']['max_bytes']} bytes)"
           + (f"; your profile lists it ({r['profile']})" if r["profile"] else ""))
    return 0


# The verbs that run against a node (in this process, or through its daemon), by command.
# `daemon`, `tour`, `tui` and the operator's `relay` actions are handled before these.
VERBS: dict[str, Callable[[Call], int]] = {
    "init": _init, "whoami": _whoami, "post": _post, "follow": _follow, "unfollow": _unfollow,
    "log": _log, "timeline": _timeline, "following": _following, "export": _export, "import": _import,
    "verify": _verify, "boost": _on_a_post, "unboost": _on_a_post, "favourite": _on_a_post,
    "unfavourite": _on_a_post, "delete": _on_a_post, "edit": _edit, "thread": _thread, "history": _history,
    "profile": _profile, "set-profile": _set_profile, "accept": _accept, "remove-follower": _remove_follower,
    "blob": _blob, "circle": _circle, "conversations": _conversations, "block": _block, "unblock": _block,
    "mute": _mute, "unmute": _mute, "mutes": _mutes, "list": _list, "lists": _lists,
    "notifications": _notifications, "search": _search, "contact": _contact, "peers": _peers,
    "status": _status, "connect": _connect, "relay": _relay_user,
}


def _daemon(args: argparse.Namespace, node: LocalNode, environ: dict[str, str], err: TextIO) -> int:
    from murmurate.node.daemon import DaemonOptions, run_daemon

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=err,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    identity = _unlock(node, args, environ)
    options = DaemonOptions(
        listen=tuple(args.listen or ("/ip4/0.0.0.0/tcp/0",)), peers=tuple(args.peer or ()),
        bootstrap_file=Path(args.bootstrap) if args.bootstrap else None, mdns=args.mdns,
        resync_s=args.resync, gossip_topics=args.gossip_topics)
    run_daemon(node, identity, options, environ, lambda: int(time.time() * 1000))
    return 0


def _relay_rows(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        if "account" in r:
            a = r["account"]
            lines.append(f"{r['peer_id']}: {a['entries']}/{a['max_entries']} entries, {a['bytes']}/{a['max_bytes']} "
                         f"bytes, {a['hosted_follows']} followed feeds hosted"
                         + (f"; {a['refusing']}" if a["refusing"] else ""))
        else:
            lines.append(f"{r['peer_id']}: {r.get('refused', {}).get('message') or r.get('error')}")
    return "\n".join(lines) or "(no relays: join one with `murmurate relay add CODE`)"


def _relay(args: argparse.Namespace, environ: dict[str, str], out: TextIO, err: TextIO) -> int:
    """The operator's side: run the relay, or talk to the running one through its socket."""
    from murmurate.node.relay import load_relay_config

    if not args.config:
        raise CliError("the relay needs --config relay.toml (docs/operations.md has a full example)")
    config = load_relay_config(args.config)
    if args.action == "run":
        from murmurate.node.relay.relay import run_relay, setup_logging

        setup_logging(config, err)
        run_relay(config, environ)
        return 0
    if args.action == "init":
        from murmurate.node.relay.relay import ensure_identity

        identity, created = ensure_identity(config, os.urandom)
        from murmurate.crypto import encode_id
        print(f"{'created' if created else 'already has'} relay key {encode_id(identity.public_key)} "
              f"in {config.data_dir} (unencrypted, mode 0600)", file=out)
        return 0
    from murmurate.node.home import Home as _Home, socket_path
    path = socket_path(_Home(config.data_dir, config.data_dir / "config.toml"), environ)
    client = ApiClient.connect(path)
    if client is None:
        raise CliError(f"no relay runs for {config.data_dir}: start it with `murmurate relay --config {args.config}`")
    try:
        if args.action == "invite":
            r = client.call("relay_invite", ttl_s=args.ttl or 0, token=not args.no_token)
            _emit(out, r, args.json, lambda r: r["code"] + ("" if r["expires_ms"] is None else
                  f"\n(single use; expires {time.strftime('%Y-%m-%d %H:%M', time.localtime(r['expires_ms'] / 1000))})"))
            return 0
        r = client.call("relay_users")
        _emit(out, r, args.json, lambda r: "\n".join(
            [f"{u['id']}  {u['via']}  {u['entries']}/{u['max_entries']} entries  {u['bytes']} bytes"
             + (f"  {u['refusing']}" if u["refusing"] else "") for u in r["users"]]
            + [f"{len(r['users'])} users, {r['hosted_feeds']} hosted feeds, {r['open_invites']} open invites"]))
        return 0
    finally:
        client.close()


def _tui(args: argparse.Namespace, environ: dict[str, str]) -> int:
    # Imported here: Textual is only needed by the client, not by scripted verbs.
    from .tui.app import MurmurateApp
    from .tui.launch import Launcher

    app = MurmurateApp(launcher=Launcher(args.home, environ))
    app.run()
    return app.return_code or 0


def _emit(out: TextIO, value: Any, as_json: bool, human: Any) -> None:
    if as_json:
        json.dump(value, out, ensure_ascii=False, indent=None)
        out.write("\n")
    else:
        print(human(value), file=out)


def _limit(n: int) -> int:
    if not 1 <= n <= 500:
        raise CliError("--limit must be from 1 to 500")
    return n


def _kdf(environ: dict[str, str]) -> KdfParams:
    # For tests only: the cheapest Argon2id settings libsodium allows. Never for real keys.
    if environ.get("MURMURATE_INSECURE_FAST_KDF") == "1":
        return KdfParams(opslimit=1, memlimit=8192)
    return KdfParams()


def _passphrase_from(args: argparse.Namespace, environ: dict[str, str]) -> bytes | None:
    if args.passphrase_file:
        try:
            raw = Path(args.passphrase_file).read_bytes()
        except OSError as e:
            raise CliError(f"cannot read passphrase file {args.passphrase_file}: {e.strerror}") from None
        return raw.splitlines()[0] if raw.strip() else b""
    if "MURMURATE_PASSPHRASE" in environ:
        return environ["MURMURATE_PASSPHRASE"].encode()
    return None


def _new_passphrase(args: argparse.Namespace, environ: dict[str, str]) -> bytes:
    given = _passphrase_from(args, environ)
    if given is None:
        if not sys.stdin.isatty():
            raise CliError("no passphrase: use --passphrase-file, MURMURATE_PASSPHRASE, a terminal, "
                           "or --no-passphrase")
        given = getpass.getpass("New passphrase: ").encode()
        if getpass.getpass("Again: ").encode() != given:
            raise CliError("the two passphrases differ; nothing was created")
    if not given:
        raise CliError("an empty passphrase is not allowed (use --no-passphrase to store the key unencrypted)")
    return given


def _unlock(node: LocalNode, args: argparse.Namespace, environ: dict[str, str]) -> SigningIdentity:
    if not node.needs_passphrase():
        return node.unlock(None)
    given = _passphrase_from(args, environ)
    if given is None:
        if not sys.stdin.isatty():
            raise CliError("the key is encrypted: give the passphrase with --passphrase-file or "
                           "MURMURATE_PASSPHRASE")
        given = getpass.getpass("Passphrase: ").encode()
    return node.unlock(given)


if __name__ == "__main__":
    raise SystemExit(main())
