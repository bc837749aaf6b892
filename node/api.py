"""The local API: JSON-RPC 2.0 lines on a Unix socket (mode 0600). docs/api.md lists the methods.

Each connection is served by its own task; requests on one connection are answered in
order. `subscribe` pushes "event" notifications on the same connection until
`unsubscribe` or the connection ends; a subscriber that stops reading is dropped rather
than slowing the node.
"""

from __future__ import annotations

import logging
import os
import socket as stdsocket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from murmurate.crypto import CryptoError, InvalidIdError, encode_id, fingerprint
from murmurate.store import PayloadType, StoreError

from . import media
from .core import rpc
from .core.api_params import missing_param
from .core.contact import Contact, encode_contact, parse_contact
from .core.views import entry_view
from .errors import NodeError

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("murmurate.api")

Handler = Callable[[dict[str, Any], "Connection"], Awaitable[Any]]
Reader = Callable[[dict[str, Any], str], Any]


def _limit(params: dict[str, Any], name: str) -> int | None:
    return rpc.optional_integer(params, name, 1, 500)


# The params of each social verb, read before the node sees them (node/service.py indexes
# params directly: only what passed these readers reaches it).
VERB_PARAMS: dict[str, dict[str, Reader]] = {
    "post": {"text": rpc.text, "cw": rpc.optional_text, "reply_to": rpc.optional_text, "lang": rpc.optional_text,
             "visibility": rpc.optional_text, "to": rpc.optional_texts, "media": rpc.optional_objects,
             "quote": rpc.optional_text},
    "boost": {"ref": rpc.text}, "unboost": {"ref": rpc.text},
    "favourite": {"ref": rpc.text}, "unfavourite": {"ref": rpc.text},
    "delete": {"ref": rpc.text},
    "edit": {"ref": rpc.text, "text": rpc.text, "cw": rpc.optional_text},
    "set_profile": {"name": rpc.optional_text, "bio": rpc.optional_text, "relays": rpc.optional_texts,
                    "pinned": rpc.optional_texts, "avatar": rpc.optional_object},
    "follow": {"id": rpc.text}, "unfollow": {"id": rpc.text},
    "block": {"id": rpc.text}, "unblock": {"id": rpc.text},
    "accept_follower": {"id": rpc.text}, "remove_follower": {"id": rpc.text},
    "timeline": {"which": rpc.optional_text, "tag": rpc.optional_text, "list": rpc.optional_text,
                 "cursor": rpc.optional_text, "limit": _limit},
    "thread": {"ref": rpc.text, "cursor": rpc.optional_text, "limit": _limit},
    "history": {"ref": rpc.text},
    "notifications": {"cursor": rpc.optional_text, "limit": _limit},
    "profile": {"id": rpc.optional_text},
    "search": {"query": rpc.text, "limit": _limit},
    "mute": {"kind": rpc.text, "value": rpc.text}, "unmute": {"kind": rpc.text, "value": rpc.text},
    "mutes": {},
    "list_add": {"name": rpc.text, "id": rpc.text}, "list_remove": {"name": rpc.text, "id": rpc.text},
    "lists": {},
    "circle": {},
    "conversations": {"limit": _limit},
}
LOCAL_WRITES = ("mute", "unmute", "list_add", "list_remove")  # read verbs that change local settings

# A local client opening many connections, each holding a long unfinished line, must not
# grow the daemon without bound (500 x 1 MB held 494 MiB): so a cap on connections, and on
# the bytes of unfinished requests held across all of them (each is also capped at MAX_LINE).
MAX_CONNECTIONS = 100
MAX_HELD_BYTES = 16 * 1024 * 1024


def read_params(verb: str, params: dict[str, Any]) -> dict[str, Any]:
    """The verb's params, each checked by its reader (absent ones left out). Raises RpcError."""
    checked = {name: read(params, name) for name, read in VERB_PARAMS[verb].items()}
    return {name: value for name, value in checked.items() if value is not None}


class ApiServer:
    def __init__(self, daemon: "Daemon") -> None:
        self.d = daemon
        self._next_subscription = 1
        self._open = 0
        self._held = _HeldBytes(MAX_HELD_BYTES)
        self.methods: dict[str, Handler] = self.method_table()

    def method_table(self) -> dict[str, Handler]:
        """Every method the API answers (docs/api.md), by name. Subclasses pick and add."""
        writes, reads = self._writes, self._reads
        return {
            "ping": self.ping, "whoami": self.whoami, "contact": self.contact,
            "post": writes("post"), "follow": writes("follow"), "unfollow": writes("unfollow"),
            "boost": writes("boost"), "unboost": writes("unboost"), "favourite": writes("favourite"),
            "unfavourite": writes("unfavourite"), "delete": writes("delete"), "edit": writes("edit"),
            "set_profile": writes("set_profile"), "block": writes("block"), "unblock": writes("unblock"),
            "accept_follower": writes("accept_follower"), "remove_follower": writes("remove_follower"),
            "attach": self.attach, "blob": self.blob,
            "following": self.following, "log": self.log_, "timeline": reads("timeline"),
            "thread": reads("thread"), "history": reads("history"), "notifications": reads("notifications"),
            "profile": reads("profile"), "search": reads("search"), "mute": reads("mute"),
            "unmute": reads("unmute"), "mutes": reads("mutes"), "list_add": reads("list_add"),
            "list_remove": reads("list_remove"), "lists": reads("lists"), "circle": reads("circle"),
            "conversations": reads("conversations"),
            "connect": self.connect, "relay_add": self.relay_add, "relay_status": self.relay_status,
            "peers": self.peers, "status": self.status, "verify": self.verify, "export": self.export,
            "import": self.import_, "subscribe": self.subscribe, "unsubscribe": self.unsubscribe,
            "shutdown": self.shutdown,
        }

    async def serve(self, path: Path, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600: only this user may talk to the node
        try:
            await sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(64)
        listener = trio.SocketListener(sock)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                await trio.serve_listeners(self._handle, [listener], handler_nursery=nursery)
        finally:
            Path(path).unlink(missing_ok=True)

    async def _handle(self, stream: trio.SocketStream) -> None:
        if self._open >= MAX_CONNECTIONS:
            with trio.move_on_after(1):
                try:
                    await stream.send_all(rpc.encode_error(None, rpc.INVALID_REQUEST,
                                                           f"over {MAX_CONNECTIONS} connections to this daemon"))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await stream.aclose()
            return
        self._open += 1
        conn = Connection(stream, self._held)
        try:
            async with trio.open_nursery() as nursery:
                conn.nursery = nursery
                try:
                    async for line in conn.lines():
                        await self._answer(conn, line)
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                    pass
                except rpc.RpcError as e:  # a line over the limit: say so and hang up
                    await conn.send_quietly(rpc.encode_error(None, e.code, e.message))
                nursery.cancel_scope.cancel()
        finally:
            self._open -= 1
            conn.closed = True
            conn.hold(0)
            await stream.aclose()

    async def _answer(self, conn: "Connection", line: bytes) -> None:
        try:
            request = rpc.parse_request(line)
        except rpc.RpcError as e:
            await conn.send(rpc.encode_error(e.id, e.code, e.message))
            return
        handler = self.methods.get(request.method)
        try:
            if handler is None:
                raise rpc.RpcError(rpc.METHOD_NOT_FOUND, f"no method {request.method!r} (see docs/api.md)")
            if (missing := missing_param(request.method, request.params)) is not None:
                raise rpc.RpcError(rpc.INVALID_PARAMS, f"param {missing!r} must be a string (see docs/api.md)")
            result = await handler(request.params, conn)
            reply = rpc.encode_result(request.id, result)
        except rpc.RpcError as e:  # the param readers' (or a method's own) refusal of the request
            reply = rpc.encode_error(request.id, e.code, e.message)
        except (NodeError, CryptoError, StoreError, InvalidIdError, ValueError, OSError) as e:
            # Refusals: the request was well-formed, and what it asked for cannot be done.
            reply = rpc.encode_error(request.id, rpc.APP_ERROR, str(e), {"kind": type(e).__name__})
        except Exception:
            # Anything else (a TypeError or KeyError included) is a bug of ours: params were
            # checked before the method ran, so it is not the caller's mistake.
            log.exception("method %s failed", request.method)
            reply = rpc.encode_error(request.id, rpc.INTERNAL_ERROR, "internal error (see the daemon's log)")
        if request.id is not None:
            await conn.send(reply)
        if request.method == "shutdown" and handler is not None:
            self.d.request_stop()  # after the answer is on its way, so the caller gets it

    # -- methods (docs/api.md) -------------------------------------------------------------

    def _writes(self, verb: str) -> Handler:
        """A social write verb: params checked, planned and appended through the writer."""
        async def method(params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
            return await self._write_verb(verb, read_params(verb, params))
        return method

    def _reads(self, verb: str) -> Handler:
        """A social read verb (or a local setting, which the one writer changes)."""
        async def method(params: dict[str, Any], conn: "Connection") -> Any:
            checked = read_params(verb, params)
            if verb in LOCAL_WRITES:
                return await self.d.writer.call(lambda store: self.d.node.writing_to(store).read(verb, checked))
            return await trio.to_thread.run_sync(self.d.node.read, verb, checked)
        return method

    async def ping(self, params: dict[str, Any], conn: "Connection") -> str:
        return "pong"

    async def whoami(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        me = self.d.identity.public_key
        return {**self.d.node.whoami(), "peer_id": self.d.host.peer_id, "addrs": self.d.host.addrs(),
                "fingerprint": fingerprint(me)}

    async def contact(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        # Direct addresses go without our peer id (the code names us); a circuit address keeps
        # it whole, since the part before /p2p-circuit names the relay, not us.
        addrs = [a if "/p2p-circuit" in a else a.split("/p2p/")[0] for a in self.d.host.addrs()]
        code = encode_contact(Contact(self.d.identity.public_key, tuple(addrs)))
        return {"code": code, "id": encode_id(self.d.identity.public_key), "addrs": addrs}

    async def _write_verb(self, verb: str, params: dict[str, Any]) -> dict[str, Any]:
        # Planning may write local settings (the circle): it runs on the writer too.
        plans = await self.d.writer.call(
            lambda store: self.d.node.writing_to(store).plan(verb, self.d.identity, params))
        item = None
        for plan in plans:
            item = await self._append(plan.payload_type, plan.payload)
        if verb == "follow":
            contact = parse_contact(params["id"])
            if contact.addrs:
                await self.d.remember_contact(contact)
        if verb in ("follow", "unfollow"):
            await self.d.replicator.feeds_changed()
        return item

    async def attach(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        """Store a file as a media blob; pass the result in `post`'s `media` list."""
        path = rpc.absolute_path(params, "path")
        alt = rpc.optional_text(params, "alt") or ""
        mime = rpc.optional_text(params, "mime")
        return await media.attach(self.d.writer, path, alt=alt, mime=mime)

    async def blob(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        """Write a blob to the file `out`, fetching it from connected peers first if needed."""
        try:
            blob = bytes.fromhex(rpc.text(params, "hash"))
        except ValueError:
            raise rpc.RpcError(rpc.INVALID_PARAMS, "hash must be hex") from None
        if len(blob) != 32:
            raise rpc.RpcError(rpc.INVALID_PARAMS, "hash must be 32 bytes of hex")
        out = rpc.absolute_path(params, "out")
        fetched_from = None
        if self.d.store.blob_size(blob) is None:
            fetched_from = await self.d.fetch_blob(blob)
        size = await media.save_blob(self.d.writer, blob, out)
        return {"out": out, "size": size, "fetched_from": fetched_from}

    async def following(self, params: dict[str, Any], conn: "Connection") -> list[str]:
        return self.d.node.following()

    async def log_(self, params: dict[str, Any], conn: "Connection") -> list[dict[str, Any]]:
        author = rpc.optional_text(params, "author")
        limit = rpc.integer(params, "limit", 20, 1, 500)
        return await trio.to_thread.run_sync(lambda: self.d.node.log(author, limit=limit))

    async def connect(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        addr = rpc.text(params, "addr")
        peer_id = await self.d.host.dial(addr)
        return {"peer_id": peer_id}

    async def relay_add(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        """Join a relay with its code (node/relay): keep it in the peer book, list it in our profile."""
        from .relay import client as relay_client
        from .relay.protocol import parse_code

        code = parse_code(rpc.text(params, "code"))
        peer_id, account = await relay_client.join(self.d.host, self.d.identity, code, self.d.now_ms())
        entry = {"addrs": list(code.addrs), "source": "relay"}
        await self.d.writer.call(lambda store: store.put_peer(peer_id.encode(), entry))
        self.d.replicator.add_peer(peer_id, list(code.addrs), "relay")
        first = code.addrs[0] if "/p2p/" in code.addrs[0] else f"{code.addrs[0]}/p2p/{peer_id}"
        relays = await trio.to_thread.run_sync(lambda: self.d.node.read("profile", {})["relays"])
        ref = None
        if not any(r.endswith("/p2p/" + peer_id) for r in relays):
            item = await self._write_verb("set_profile", {"relays": [*relays, first][-8:]})
            ref = item["ref"]
        return {"relay": encode_id(code.public_key), "peer_id": peer_id, "account": account, "profile": ref}

    async def relay_status(self, params: dict[str, Any], conn: "Connection") -> list[dict[str, Any]]:
        """Ask every relay in the peer book how our account stands (usage, quota, refusals)."""
        from .relay import client as relay_client
        from .relay.protocol import StatusRequest

        out = []
        for peer_id, info in self.d.store.peers().items():
            if info.get("source") != "relay":
                continue
            row: dict[str, Any] = {"peer_id": peer_id.decode(), "addrs": info.get("addrs", [])}
            try:
                if peer_id.decode() not in self.d.host.connected_peers():
                    await relay_client.reach(self.d.host, relay_client.code_from_book(peer_id.decode(), row["addrs"]))
                row["account"] = await relay_client.request(self.d.host, peer_id.decode(), StatusRequest())
            except relay_client.RelayRefusedError as e:
                row["refused"] = {"code": e.code, "message": str(e)}
            except NodeError as e:
                row["error"] = str(e)
            out.append(row)
        return out

    async def peers(self, params: dict[str, Any], conn: "Connection") -> list[dict[str, Any]]:
        return self.d.peer_list()

    async def status(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        status = self.d.replicator.status()
        # A feed the audit cut at a bad signature: its entries from that seq on were removed
        # and it is frozen (store/cut.py), so "behind" no longer means anything for it.
        cuts = {encode_id(author): seq for author, seq, _, _ in await trio.to_thread.run_sync(self.d.store.cuts)}
        for feed in status["feeds"]:
            if feed["id"] in cuts:
                feed.update(cut_at=cuts[feed["id"]], cut_reason="bad_signature", behind=0)
        return {**status, "id": encode_id(self.d.identity.public_key), "peer_id": self.d.host.peer_id,
                "addrs": self.d.host.addrs(), "entries": self.d.store.count_entries(),
                "budget": {k: v for k, v in self.d.host.statistics().items() if k.startswith("budget_")},
                "unaudited": await trio.to_thread.run_sync(self.d.store.unaudited_count),
                "storage": storage_status(self.d.writer),
                "cut": [{"id": feed_id, "seq": seq, "reason": "bad_signature"} for feed_id, seq in cuts.items()]}

    async def verify(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        return await trio.to_thread.run_sync(self.d.node.verify)

    async def export(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        path = rpc.absolute_path(params, "file")
        return await trio.to_thread.run_sync(self.d.node.export, path)

    async def import_(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        path = rpc.absolute_path(params, "file")
        # A job of the writer, on its store: every batch it commits is announced (subscribers,
        # live streams, the private-post opener), however many feeds it appends to.
        return await self.d.writer.call(lambda store: self.d.node.writing_to(store).import_(path))

    async def subscribe(self, params: dict[str, Any], conn: "Connection") -> dict[str, Any]:
        """Push every entry this node stores from now on as an "event" notification."""
        sub_id = self._next_subscription
        self._next_subscription += 1
        commits = self.d.writer.listen(buffer=256)
        conn.subscriptions[sub_id] = commits
        assert conn.nursery is not None
        conn.nursery.start_soon(self._push, conn, sub_id, commits)
        return {"subscription": sub_id}

    async def unsubscribe(self, params: dict[str, Any], conn: "Connection") -> bool:
        sub_id = rpc.integer(params, "subscription", 0, 1, 2**53)
        commits = conn.subscriptions.pop(sub_id, None)
        if commits is None:
            raise rpc.RpcError(rpc.INVALID_PARAMS, f"no subscription {sub_id!r} on this connection")
        await commits.aclose()
        return True

    async def shutdown(self, params: dict[str, Any], conn: "Connection") -> bool:
        return True  # _answer stops the daemon once this reply is sent

    async def _push(self, conn: "Connection", sub_id: int, commits: Any) -> None:
        try:
            async for commit in commits:
                for author, seq in commit.cut:
                    await conn.send(rpc.encode_notification("event", {
                        "subscription": sub_id, "kind": "cut", "author": encode_id(author), "seq": seq,
                        "reason": "bad_signature"}))
                for author, seq in commit.appended:
                    stored = await trio.to_thread.run_sync(self.d.store.get, author, seq)
                    if stored is None:
                        continue
                    await conn.send(rpc.encode_notification("event", {
                        "subscription": sub_id, "kind": "entry", "item": entry_view(stored)}))
                for author, why in commit.caps:  # the storage caps began refusing (operations.md)
                    await conn.send(rpc.encode_notification("event", {
                        "subscription": sub_id, "kind": "storage_cap",
                        "feed": encode_id(author) if author else None, "why": why}))
        except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError):
            return
        if sub_id in conn.subscriptions and not conn.closed:
            # The listener was closed because this client fell behind: tell it to refetch.
            await conn.send_quietly(rpc.encode_notification("event", {"subscription": sub_id, "kind": "overflow"}))

    async def _append(self, ptype: PayloadType, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await self.d.writer.append_own(self.d.identity, ptype, payload, self.d.now_ms())
        stored = self.d.store.get(entry.envelope.author, entry.envelope.seq)
        assert stored is not None
        return entry_view(stored)


class _HeldBytes:
    """The bytes of unfinished requests held by all connections together, against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class Connection:
    """One client's socket: its lines in, its replies and notifications out (one at a time)."""

    def __init__(self, stream: trio.SocketStream, held: _HeldBytes) -> None:
        self.stream = stream
        self.send_lock = trio.Lock()
        self.subscriptions: dict[int, Any] = {}
        self.nursery: trio.Nursery | None = None
        self.closed = False
        self._all_held = held
        self._held = 0

    def hold(self, size: int) -> None:
        """Count `size` bytes as this connection's input; raises RpcError (the caller hangs
        up) when that would take all connections together over their limit."""
        grow = size - self._held
        if grow > 0 and self._all_held.used + grow > self._all_held.limit:
            raise rpc.RpcError(rpc.INVALID_REQUEST, "the daemon holds too much unfinished input from its "
                                                    "connections; send shorter lines, or try again")
        self._all_held.used += grow
        self._held = size

    async def lines(self):
        buf = bytearray()
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            buf += data
            self.hold(len(buf))
            consumed = False
            while True:
                end = buf.find(b"\n")
                if end < 0:
                    if len(buf) > rpc.MAX_LINE:
                        raise rpc.RpcError(rpc.INVALID_REQUEST, f"line over {rpc.MAX_LINE} bytes")
                    break
                line = bytes(buf[:end])
                del buf[:end + 1]
                consumed = True
                if line.strip():
                    yield line  # still counted while it is answered
                self.hold(len(buf))
            if consumed:
                buf = bytearray(buf)  # let go of the room a long line left behind

    async def send(self, data: bytes) -> None:
        async with self.send_lock:
            with trio.fail_after(30):  # a client that stops reading is dropped, not waited for
                await self.stream.send_all(data)

    async def send_quietly(self, data: bytes) -> None:
        try:
            await self.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass


def storage_status(writer: Any) -> dict[str, Any]:
    """What the storage caps refuse now (node/core/caps.py): feeds stopped at the per-feed
    cap, and why the whole store takes no more ("" while it does)."""
    return {"capped_feeds": [{"id": encode_id(a), "why": why} for a, why in writer.capped.items()],
            "store_full": writer.node_full, "refused_entries": writer.cap_refused}
