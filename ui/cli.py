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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from murmurate.crypto import CryptoError, KdfParams, SigningIdentity
from murmurate.node import Home, LocalNode, NodeError
from murmurate.node.home import socket_path
from murmurate.store import StoreError

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
    s.add_argument("--lang", help="language tag, e.g. en")
    s.add_argument("--visibility", choices=("public", "unlisted"), default="public",
                   help="unlisted: not in hashtag or federated timelines")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("log", help="one author's feed, newest first (default: your own)")
    s.add_argument("--author", metavar="ID")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("timeline", help="home timeline: you and the people you follow")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--federated", action="store_true", help="everything this node holds")
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

    s = sub.add_parser("daemon", help="run the node in the foreground (network + local API)")
    s.add_argument("--listen", action="append", metavar="MULTIADDR",
                   help="address to listen on (repeatable; default /ip4/0.0.0.0/tcp/0)")
    s.add_argument("--peer", action="append", metavar="MULTIADDR", help="a peer to dial at start (repeatable)")
    s.add_argument("--bootstrap", metavar="FILE", help="bootstrap peers file (default: bootstrap_peers.toml)")
    s.add_argument("--mdns", action="store_true", help="find peers on the LAN with mDNS")
    s.add_argument("--resync", type=float, default=30.0, metavar="SECONDS",
                   help="catch up with every connected peer this often (default 30)")
    sub.add_parser("contact", help="print your contact code (id + addresses) to share")
    sub.add_parser("peers", help="peers known and connected").add_argument("--json", action="store_true")
    sub.add_parser("status", help="connections and how far behind each followed feed is").add_argument(
        "--json", action="store_true")
    sub.add_parser("connect", help="dial a peer now").add_argument("addr")
    return p


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         env: dict[str, str] | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    environ = dict(os.environ) if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(out)
        return 0
    try:
        if args.command == "tour":
            from .tour import run_tour
            return run_tour(out)
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


DAEMON_ONLY = ("contact", "peers", "status", "connect")


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
    cmd = args.command
    now = int(time.time() * 1000)
    if cmd == "init":
        passphrase = None if args.no_passphrase else _new_passphrase(args, environ)
        who = node.node.init(passphrase, kdf=_kdf(environ))
        print(f"created identity {who['id']}", file=out)
        print(f"fingerprint {who['fingerprint']}; key file {node.node.home.key_file}"
              + ("" if who["key_encrypted"] else " (NOT encrypted)"), file=out)
        return 0
    if cmd == "whoami":
        who = node.call("whoami")
        _emit(out, who, args.json, lambda w: f"{w['id']}\nfingerprint {w['fingerprint']}  home {w['home']}")
        return 0
    if cmd == "post":
        text = sys.stdin.read() if args.text == "-" else args.text
        item = node.call("post", text=text, cw=args.cw, reply_to=args.reply_to, lang=args.lang,
                         visibility=args.visibility)
        _emit(out, item, args.json, lambda i: f"posted {i['ref']}")
        return 0
    if cmd == "follow":
        item = node.call("follow", id=args.id)
        print(f"following {item['target']}", file=out)
        return 0
    if cmd == "unfollow":
        item = node.call("unfollow", id=args.id)
        print(f"no longer following {item['target']}", file=out)
        return 0
    if cmd == "log":
        items = node.call("log", author=args.author, limit=_limit(args.limit))
        _emit(out, items, args.json, lambda xs: render.entries(xs, now) or "(no entries)")
        return 0
    if cmd == "timeline":
        which = "federated" if args.federated else "hashtag" if args.tag else "list" if args.list else "home"
        page = node.call("timeline", which=which, tag=args.tag, list=args.list, limit=_limit(args.limit),
                         cursor=args.cursor)
        _emit(out, page, args.json, lambda p: render.timeline(p, now))
        return 0
    if cmd == "following":
        ids = node.call("following")
        _emit(out, ids, args.json, lambda xs: "\n".join(xs) or "(you follow no one yet)")
        return 0
    if cmd == "export":
        r = node.call("export", file=str(Path(args.file).resolve()))
        print(f"exported {r['entries']} entries of {r['feeds']} feeds to {r['file']} ({r['bytes']} bytes)", file=out)
        return 0
    if cmd == "import":
        r = node.call("import", file=str(Path(args.file).resolve()))
        print(f"checked {r['entries']} entries of {r['feeds']} feeds: {r['new']} new, "
              f"{r['already_had']} already here, {r['refused']} refused, {r['forks']} forks", file=out)
        return 0 if r["refused"] == 0 and r["forks"] == 0 else 1
    if cmd == "verify":
        r = node.call("verify")
        _emit(out, r, args.json, lambda v: "\n".join(
            [f"checked {v['entries']} entries in {v['feeds']} feeds: "
             + ("all good" if not v["problems"] else f"{len(v['problems'])} problems")] + v["problems"]))
        return 0 if not r["problems"] else 1
    if cmd in ("boost", "unboost", "favourite", "unfavourite", "delete"):
        item = node.call(cmd, ref=args.ref)
        print(f"{cmd}: done ({item['ref']})", file=out)
        return 0
    if cmd == "edit":
        item = node.call("edit", ref=args.ref, text=args.text, cw=args.cw)
        print(f"edited {args.ref} ({item['ref']})", file=out)
        return 0
    if cmd == "thread":
        t = node.call("thread", ref=args.ref)
        print(render.thread(t, now), file=out)
        return 0
    if cmd == "history":
        for v in node.call("history", ref=args.ref):
            print(f"{render.relative_time(v['timestamp_ms'], now)}: {v['text']}", file=out)
        return 0
    if cmd == "profile":
        _emit(out, node.call("profile", id=args.id), args.json, render.profile)
        return 0
    if cmd == "set-profile":
        item = node.call("set_profile", name=args.name, bio=args.bio, relays=args.relay, pinned=args.pin)
        print(f"profile updated ({item['ref']})", file=out)
        return 0
    if cmd in ("block", "unblock"):
        node.call(cmd, id=args.id)
        print(f"{cmd}ed {args.id.strip()}", file=out)
        return 0
    if cmd in ("mute", "unmute"):
        node.call(cmd, kind=args.kind, value=args.value)
        print(f"{cmd}d {args.kind} {args.value}", file=out)
        return 0
    if cmd == "mutes":
        _emit(out, node.call("mutes"), args.json, lambda m: json.dumps(m, indent=2, ensure_ascii=False))
        return 0
    if cmd == "list":
        node.call("list_add" if args.action == "add" else "list_remove", name=args.name, id=args.id)
        print(f"list {args.name}: {args.action} {args.id}", file=out)
        return 0
    if cmd == "lists":
        _emit(out, node.call("lists"), args.json, lambda m: "\n".join(
            f"{name}: {len(members)} members" for name, members in m.items()) or "(no lists)")
        return 0
    if cmd == "notifications":
        _emit(out, node.call("notifications", limit=_limit(args.limit)), args.json,
              lambda n: render.notifications(n, now))
        return 0
    if cmd == "search":
        _emit(out, node.call("search", query=args.query), args.json, lambda r: render.search(r, now))
        return 0
    if cmd == "contact":
        print(node.call("contact")["code"], file=out)
        return 0
    if cmd == "peers":
        _emit(out, node.call("peers"), args.json, render.peers)
        return 0
    if cmd == "status":
        _emit(out, node.call("status"), args.json, render.status)
        return 0
    if cmd == "connect":
        print(f"connected to {node.call('connect', addr=args.addr)['peer_id']}", file=out)
        return 0
    raise CliError(f"unknown command {cmd}")


def _daemon(args: argparse.Namespace, node: LocalNode, environ: dict[str, str], err: TextIO) -> int:
    from murmurate.node.daemon import DaemonOptions, run_daemon

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=err,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    identity = _unlock(node, args, environ)
    options = DaemonOptions(
        listen=tuple(args.listen or ("/ip4/0.0.0.0/tcp/0",)), peers=tuple(args.peer or ()),
        bootstrap_file=Path(args.bootstrap) if args.bootstrap else None, mdns=args.mdns,
        resync_s=args.resync)
    run_daemon(node, identity, options, environ, lambda: int(time.time() * 1000))
    return 0


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
