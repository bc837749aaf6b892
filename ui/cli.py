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
        media = None
        if args.media:
            alts = (args.alt or []) + [""] * len(args.media)
            media = [node.call("attach", path=str(Path(f).resolve()), alt=alt) for f, alt in zip(args.media, alts)]
        item = node.call("post", text=text, cw=args.cw, reply_to=args.reply_to, lang=args.lang,
                         visibility=args.visibility, to=args.to, media=media, quote=args.quote)
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
        which = ("federated" if args.federated else "local" if args.local else "hashtag" if args.tag
                 else "list" if args.list else "home")
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
        for c in r.get("cut", []):
            print(f"  {c['author']}: written up to entry {c['bad_seq'] - 1}; entry {c['bad_seq']} has a bad signature",
                  file=out)
        return 0
    if cmd == "import":
        r = node.call("import", file=str(Path(args.file).resolve()))
        print(f"checked {r['entries']} entries of {r['feeds']} feeds: {r['new']} new, "
              f"{r['already_had']} already here, {r['refused']} refused, {r['forks']} forks", file=out)
        refused_feeds = r.get("refused_feeds", [])
        for f in refused_feeds:
            print(f"  feed refused, nothing of it imported: {f['reason']}", file=out)
        return 0 if r["refused"] == 0 and r["forks"] == 0 and not refused_feeds else 1
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
    if cmd in ("accept", "remove-follower"):
        node.call("accept_follower" if cmd == "accept" else "remove_follower", id=args.id)
        print(f"{'accepted' if cmd == 'accept' else 'removed'} {args.id.strip()}", file=out)
        return 0
    if cmd == "blob":
        r = node.call("blob", hash=args.hash, out=str(Path(args.out).resolve()))
        print(f"saved {r['size']} bytes to {r['out']}", file=out)
        return 0
    if cmd == "circle":
        _emit(out, node.call("circle"), args.json, lambda xs: "\n".join(xs) or "(no accepted followers yet)")
        return 0
    if cmd == "conversations":
        _emit(out, node.call("conversations"), args.json, lambda p: render.timeline(p, now))
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
    if cmd == "relay" and args.action == "add":
        if not args.code:
            raise CliError("relay add needs the relay code (murr_...) its operator gave you")
        r = node.call("relay_add", code=args.code)
        _emit(out, r, args.json, lambda r: f"joined relay {r['relay']}: it hosts your feed "
              f"(quota {r['account']['max_entries']} entries, {r['account']['max_bytes']} bytes)"
              + (f"; your profile lists it ({r['profile']})" if r["profile"] else ""))
        return 0
    if cmd == "relay" and args.action == "status":
        rows = node.call("relay_status")
        _emit(out, rows, args.json, _relay_rows)
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
