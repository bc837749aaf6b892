"""The libp2p shell: the ONE module of Murmurate that imports libp2p (py-libp2p 0.8.1).

Everything else sees our own small types: `HostConfig`, `P2PHost`, `Stream`,
`Subscription`, `Message` and the `P2PError` family, with peer ids as base58 strings.
The numbered pitfalls are those of ../shared/LIBP2P-NOTES.md; each workaround says which.

Stack: TCP, Noise only (pitfall 8), Yamux only, GossipSub with every parameter set.
Identity: the node's Ed25519 seed is the libp2p key, so an author id and a peer id are
one key (`public_key_from_peer_id`).

mDNS (pitfall 13), measured on this machine: `HostConfig(mdns=True)` works (two hosts
in one process find each other and dial the found address), but each host blocks the
trio loop about 1.6 s while zeroconf starts, adds three threads (gone after close), and
calls back on a zeroconf thread (we hop into trio with the trio token). py-libp2p's
discovery handler list is process-wide, so every host in a process hears every
discovery: we drop our own peer id. Off by default because of the blocking start.
Not worked around: pubsub spawns one task per incoming message (pitfall 6), so overload
shows as latency, not errors.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p import new_swarm
from libp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from libp2p.crypto.keys import KeyPair
from libp2p.connection_types import ConnectionType
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.exceptions import ParseError
from libp2p.io.exceptions import MessageTooLarge
from libp2p.network.connection.exceptions import RawConnError
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.exceptions import SwarmException
from libp2p.network.stream.exceptions import StreamClosed, StreamEOF, StreamError, StreamReset
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.protocol_muxer import multiselect_communicator as _multiselect_communicator
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub, TopicValidator
from libp2p.pubsub.score import ScoreParams
from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as CircuitPeerId
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL_ID
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode, to_proto_status
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.stream_muxer import muxer_multistream as _muxer_multistream
from libp2p.stream_muxer.yamux import yamux as _yamux_module
from libp2p.tools.anyio_service.trio_manager import TrioManager
from libp2p.utils.varint import read_varint_prefixed_bytes_limited
from nacl.signing import SigningKey

from .core.budget import Budget, Limits, Refusal
from .errors import NodeError

__all__ = ["BudgetExceededError", "CircuitLimits", "HostConfig", "Limits", "Message", "P2PError", "P2PLocalError", "P2PRemoteError", "P2PHost", "Stream",
           "StreamResetError", "Subscription", "open_host", "peer_id_from_public_key",
           "public_key_from_peer_id"]

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 5.0
FLUSH_TIMEOUT = 2.0          # how long closing waits for queued publishes to leave
PEER_QUEUE_HIGH = 16         # libp2p drops above 32 queued RPCs per peer (pitfall 3)
MAX_TOPICS_PER_PEER = 1_000  # libp2p default 100 silently ignores the 101st (pitfall 5)
CIRCUIT = "/p2p-circuit"
RESERVE_TICK_S = 1.0         # how often the reservation keeper looks at the relays' connections
RESERVE_RENEW_S = 300        # renew a reservation this long before it expires
# Yamux grows a stream's receive window up to 16 MiB (go-yamux's figure). Whatever a peer
# sends within the window waits in an unbounded bytearray until we read it, so a node that
# reads slower than its peers send (a relay ingesting from several at once: the store, not
# the network, sets its pace) buffered up to 16 MiB per stream, and the allocator kept the
# memory after the peak. 1 MiB still covers about 1 ms of round trip at 1 GB/s.
YAMUX_MAX_WINDOW = 1024 * 1024
_yamux_module.MAX_WINDOW_SIZE = YAMUX_MAX_WINDOW
# What a peer may push into a new stream before we read a byte (Yamux's initial window, which
# both sides assume): the memory every stream is charged from its first frame (node/core/budget.py).
STREAM_WINDOW = _yamux_module.DEFAULT_WINDOW_SIZE
# A stream names its protocol within this or is reset (py-libp2p waits 30 s, holding the stream).
NEGOTIATION_TIMEOUT_S = 10
# multistream-select messages are protocol ids ("/murmurate/sync/1\n"); py-libp2p reads any
# length a peer announces, so one stream could hold gigabytes while it negotiates.
MAX_NEGOTIATION_MESSAGE = 1024
# After a handler returns, wait this long for the peer to close its side, then reset: a stream
# the peer never closes would otherwise stay in Yamux (with its buffer) for the connection's life.
LINGER_S = 5.0
# A frame write is not cancelled half-way (_Yamux._write_frame); one that takes this long
# closes the connection instead (go-yamux's ConnectionWriteTimeout).
FRAME_WRITE_TIMEOUT_S = 10.0


async def _bounded_read_delim(reader: Any) -> bytes:
    """libp2p.utils.read_delim with a length limit (MAX_NEGOTIATION_MESSAGE)."""
    try:
        message = await read_varint_prefixed_bytes_limited(reader, MAX_NEGOTIATION_MESSAGE)
    except MessageTooLarge as exc:
        raise ParseError(str(exc)) from exc
    if not message.endswith(b"\n"):
        raise ParseError("a multistream-select message ends with a newline")
    return message[:-1]


_multiselect_communicator.read_delim = _bounded_read_delim


# -- errors --------------------------------------------------------------------------------

class P2PError(NodeError):
    """Base of every error raised by node/p2p.py."""


class P2PLocalError(P2PError):
    """Our own side misused the host: a bad address, a closed host, a bad topic."""


class P2PRemoteError(P2PError):
    """The remote side or the network failed: dial refused or timed out, protocol refused."""


class StreamResetError(P2PRemoteError):
    """The stream was reset (by the peer, or by us after an error)."""


class BudgetExceededError(P2PRemoteError):
    """A peer's stream would buffer more than the budget allows (node/core/budget.py); the
    stream was reset. Remote load caused it, so it is a remote error: try again later."""


# -- identity ------------------------------------------------------------------------------

def _key_pair(seed: bytes) -> KeyPair:
    if len(seed) != 32:
        raise P2PLocalError(f"an Ed25519 seed has 32 bytes, not {len(seed)}")
    # Wrap the PyNaCl key directly: the same seed gives the same peer id (NOTES "Works").
    private = Ed25519PrivateKey(SigningKey(seed))
    return KeyPair(private, private.get_public_key())


def peer_id_from_public_key(public_key: bytes) -> str:
    """Base58 peer id of a 32-byte Ed25519 public key. Raises P2PLocalError on a bad key."""
    if len(public_key) != 32:
        raise P2PLocalError(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    return ID.from_pubkey(Ed25519PublicKey.from_bytes(public_key)).to_base58()


def public_key_from_peer_id(peer_id: str) -> bytes | None:
    """The Ed25519 public key inside an identity-hashed peer id; None for any other id."""
    try:
        key = ID.from_base58(peer_id).extract_public_key()
    except Exception:  # libp2p raises assorted errors on garbage; the answer is "none"
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.to_bytes()


def _remote_ip(muxed_conn: Any) -> str:
    """The address a connection's budget is counted under: its remote IP, or "relayed"."""
    try:
        address = muxed_conn.get_remote_address()
    except Exception:  # a relayed connection rides on a stream and has no address of its own
        address = None
    return str(address[0]) if address else "relayed"


# -- small value types ---------------------------------------------------------------------

@dataclass(frozen=True)
class CircuitLimits:
    """What a relay host grants through circuit relay v2 (the hop service)."""
    max_reservations: int = 1_000      # peers reachable through us at once
    max_circuits_per_peer: int = 8     # relayed connections to one reserved peer at once
    duration_s: int = 3_600            # a circuit is reset after this; the peers redial
    data_bytes: int = 64 << 20         # bytes per circuit, both directions together
    reservation_ttl_s: int = 3_600     # the holder renews before this (RESERVE_RENEW_S)


@dataclass(frozen=True)
class HostConfig:
    seed: bytes
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    hop: CircuitLimits | None = None   # run the circuit relay v2 hop service (a relay)
    hole_punch: bool = True            # DCUtR: upgrade relayed connections to direct ones (not on relays)
    pubsub: bool = True
    mdns: bool = False
    subscription_buffer: int = 1_024   # per topic; see Subscription
    publish_queue: int = 256           # publish() blocks when this many wait to go out
    publish_rate: float = 250.0        # messages/s at most: a 3-node line carries ~170-310 (pitfall 15)
    limits: Limits = field(default_factory=Limits)  # what remote peers may make us hold


@dataclass(frozen=True)
class Message:
    from_peer: str   # the original publisher (signed), not the neighbour that forwarded it
    topic: str
    data: bytes


class _Ticket:
    """One stream's charge on the host's budget, from accept (or open) until released.

    `base` is what Yamux may hold for the stream (STREAM_WINDOW); `extra` is what our own
    reader says it buffers (Stream.hold). Releasing is idempotent.
    """

    def __init__(self, budget: Budget, peer: str, ip: str, base: int) -> None:
        self.budget, self.peer, self.ip, self.base = budget, peer, ip, base
        self.extra = 0
        self.open = True

    def resize(self, extra: int) -> Refusal | None:
        if not self.open:
            return None
        if extra > self.extra:
            refusal = self.budget.grow(self.peer, self.ip, extra - self.extra)
            if refusal is not None:
                return refusal
        elif extra < self.extra:
            self.budget.release_memory(self.peer, self.ip, self.extra - extra)
        self.extra = extra
        return None

    def release(self) -> None:
        if self.open:
            self.open = False
            self.budget.close_stream(self.peer, self.ip, self.base + self.extra)


class Stream:
    """A bidirectional byte stream to one peer on one protocol."""

    def __init__(self, net_stream: Any, remote_peer: str, protocol: str, ticket: _Ticket | None = None,
                 *, outgoing: bool = False) -> None:
        self._s = net_stream
        self.remote_peer = remote_peer
        self.protocol = protocol
        self._done = False
        self._ticket = ticket
        self._outgoing = outgoing
        if ticket is not None and outgoing:  # a caller that drops the stream gives its charge back
            weakref.finalize(self, ticket.release)

    async def hold(self, nbytes: int) -> None:
        """Tell the budget our reader now buffers `nbytes` of this stream (say 0 once drained).

        Raises BudgetExceededError, after resetting the stream, if the peer's budget (or
        the host's) has no room for it.
        """
        if self._ticket is None:
            return
        refusal = self._ticket.resize(nbytes)
        if refusal is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self.reset()
            raise BudgetExceededError(f"{self.protocol} with {self.remote_peer}: {refusal}")

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to max_bytes; b"" once the peer closed its side. Raises StreamResetError."""
        try:
            return await self._s.read(max_bytes)
        except StreamEOF as exc:  # pitfall 11: libp2p raises at EOF; we return b"" like a socket
            # Yamux forgets a stream once reset and then reports EOF: its flag tells the truth.
            if getattr(self._s.muxed_stream, "reset_received", False):
                raise StreamResetError(f"stream {self.protocol} with {self.remote_peer} was reset") from exc
            return b""
        except StreamReset as exc:
            raise StreamResetError(f"stream {self.protocol} with {self.remote_peer} was reset") from exc
        except StreamError as exc:
            raise P2PRemoteError(f"read on {self.protocol} from {self.remote_peer} failed: {exc}") from exc

    async def write(self, data: bytes) -> None:
        """Raises StreamResetError, or P2PLocalError after our own close()."""
        try:
            await self._s.write(data)
        except StreamClosed as exc:
            raise P2PLocalError(f"stream {self.protocol} is closed for writing") from exc
        except StreamReset as exc:
            raise StreamResetError(f"stream {self.protocol} with {self.remote_peer} was reset") from exc
        except StreamError as exc:
            raise P2PRemoteError(f"write on {self.protocol} to {self.remote_peer} failed: {exc}") from exc

    async def close(self) -> None:
        """Half-close: we write no more (the peer reads b""); reading still works. Idempotent.
        A stream we opened stops being charged to the budget here."""
        if self._outgoing and self._ticket is not None:
            self._ticket.release()
        if not self._done:
            self._done = True
            try:
                await self._s.close()
            except Exception as exc:  # already reset or the connection is gone: nothing to close
                log.debug("close of %s stream: %r", self.protocol, exc)

    async def reset(self) -> None:
        """Abort both directions; the peer's next read raises StreamResetError. Idempotent."""
        self._done = True
        if self._ticket is not None:
            self._ticket.release()
        await self._s.reset()

    async def _linger(self) -> None:
        """After our close: wait up to LINGER_S for the peer's, discarding what it still sends;
        then reset, so a peer that never closes leaves nothing behind in Yamux."""
        with trio.move_on_after(LINGER_S):
            try:
                while await self.read():
                    pass
                return
            except P2PError:
                return
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            try:
                await self.reset()
            except Exception as exc:  # the connection is gone: nothing left to reset
                log.debug("reset after linger: %r", exc)


class Subscription:
    """Messages of one topic from other peers, as an async iterator of Message.

    Our own publishes are never delivered here (pitfall 7). The buffer is ours and
    bounded (HostConfig.subscription_buffer), replacing libp2p's silent 32 (pitfall 4):
    when it is full, the newest message is dropped and `dropped` counts it (also summed
    in P2PHost.statistics()["dropped"]). A reader that sees `dropped` grow has missed
    entries and should catch up over a stream. Iteration ends after unsubscribe.
    """

    def __init__(self, topic: str, capacity: int) -> None:
        self.topic = topic
        self.dropped = 0
        self._send, self._recv = trio.open_memory_channel[Message](capacity)

    def _offer(self, message: Message) -> bool:
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            self.dropped += 1
            return False
        except trio.ClosedResourceError:
            return False
        return True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self._recv.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def receive(self) -> Message:
        """The next message. Raises P2PLocalError once unsubscribed and drained."""
        try:
            return await self._recv.receive()
        except trio.EndOfChannel:
            raise P2PLocalError(f"unsubscribed from {self.topic}") from None


# -- pubsub hooks --------------------------------------------------------------------------

class _Pubsub(Pubsub):
    """libp2p's Pubsub with delivery and validation routed to P2PHost."""

    owner: P2PHost

    def notify_subscriptions(self, publish_message: Any) -> None:
        # Replaces libp2p's 32-slot channel (pitfall 4) and skips our own messages (pitfall 7).
        self.owner._deliver(publish_message)

    def get_msg_validators(self, msg: Any) -> tuple[TopicValidator, ...]:
        # Our validators match a topic or a "prefix*"; libp2p only knows exact topics.
        return tuple(TopicValidator(v, False) for t in msg.topicIDs if (v := self.owner._validator_for(t)))

    async def _handle_new_peer(self, peer_id: ID) -> None:
        # A gated peer gets no hello (our topics) and is never registered, so no RPC is queued to it.
        if self.owner._refusal(peer_id) is None:
            await super()._handle_new_peer(peer_id)

    async def write_msg(self, stream: Any, rpc_msg: Any) -> bool:
        # The last gate: a peer gated after it was registered gets nothing more (the owner hangs up).
        if self.owner._refusal(stream.muxed_conn.peer_id) is not None:
            self.owner._stats["gated_rpcs"] += 1
            return True
        return await super().write_msg(stream, rpc_msg)


class _Host(BasicHost):
    """libp2p's host with the owner's gate on every stream, in and out."""

    def __init__(self, owner: P2PHost, **kwargs: Any) -> None:
        self._owner = owner  # before BasicHost registers its own handlers through ours
        super().__init__(**kwargs)

    def set_stream_handler(self, protocol_id: TProtocol, stream_handler: Any) -> None:
        owner = self._owner

        async def gated(net_stream: Any) -> None:
            if not owner._may_use(net_stream.muxed_conn.peer_id, protocol_id):
                owner._stats["gated_streams"] += 1
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    try:
                        await net_stream.reset()
                    except Exception as exc:  # already gone: nothing to refuse
                        log.debug("reset of a gated stream: %r", exc)
                return
            await stream_handler(net_stream)

        super().set_stream_handler(protocol_id, gated)

    async def new_stream(self, peer_id: ID, protocol_ids: Any) -> Any:
        if not all(self._owner._may_use(peer_id, p) for p in protocol_ids):
            raise SwarmException(f"{peer_id.to_base58()} is gated")
        return await super().new_stream(peer_id, protocol_ids)


class _HopService(CircuitV2Protocol):
    """libp2p's circuit relay v2 service; on a relay host, reservations go through its policy."""

    owner: P2PHost

    async def _handle_reserve(self, stream: Any, msg: Any) -> None:
        peer = stream.muxed_conn.peer_id
        policy = self.owner._reservation_policy
        if policy is not None and not policy(peer.to_base58()):
            self.owner._stats["reservations_refused"] += 1
            await write_delimited_msg(stream, HopMessage(type=HopMessage.STATUS,
                                                         status=to_proto_status(StatusCode.PERMISSION_DENIED)))
            return
        self.owner._stats["reservations_granted"] += 1
        await super()._handle_reserve(stream, msg)


class _WindowBuffer(bytearray):
    """A Yamux stream's receive buffer that never outgrows the largest window we grant.

    py-libp2p only logs a peer that sends past a stream's window and keeps buffering, so
    one stream we do not read could hold any amount. A peer that does it breaks Yamux
    (go-yamux closes the session too): its whole connection is closed.
    """

    def __init__(self, data: Any, conn: "_Yamux") -> None:
        super().__init__(data)
        self._conn = conn

    def extend(self, data: Any) -> None:
        if len(self) + len(data) > YAMUX_MAX_WINDOW:
            raise self._conn._violation(f"sent past a stream's receive window ({YAMUX_MAX_WINDOW} bytes)")
        super().extend(data)


class _WindowBuffers(dict):  # type: ignore[type-arg]
    def __init__(self, conn: "_Yamux") -> None:
        super().__init__()
        self._conn = conn

    def __setitem__(self, stream_id: Any, buffer: Any) -> None:
        super().__setitem__(stream_id, _WindowBuffer(buffer, self._conn))


class _Yamux(Yamux):
    """libp2p's Yamux with receive windows enforced (see _WindowBuffer) and frame writes
    that a cancelled caller cannot cut half-way (see _write_frame)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream_buffers = _WindowBuffers(self)
        self._violated = False

    async def _read_data_body(self, length: int) -> bytes:
        # Checked before reading: py-libp2p would first gather a frame of any announced length.
        if length > YAMUX_MAX_WINDOW:
            raise self._violation(f"announced a Yamux frame of {length} bytes, more than any window we grant")
        return await super()._read_data_body(length)

    def _violation(self, what: str) -> RawConnError:
        """Close the connection; return the error to raise. py-libp2p catches any error while
        it handles a data frame, logs it and reads on, so closing is ours to start: its own
        clean-up closes the secured connection and the swarm then forgets it."""
        self._shut_down(f"it {what}")
        return RawConnError(f"the peer {what}")

    def _shut_down(self, why: str) -> None:
        if not self._violated:
            self._violated = True
            log.info("closing the connection of %s: %s", self.peer_id, why)
            self.event_shutting_down.set()
            if self._nursery is not None:
                self._nursery.start_soon(self._cleanup_on_error)

    async def _write_frame(self, data: bytes) -> None:
        # Every stream's frames share one Noise session, and Noise spends a nonce when it
        # encrypts, before the bytes reach the socket. A writer cancelled between the two (a
        # cancelled read sending its window update, a cancelled sync) left the nonce spent and
        # the frame unsent (or half sent): the peer failed to decrypt the next frame and closed
        # the whole connection. So waiting for our turn may be cancelled (nothing is spent yet),
        # the write itself may not. It is bounded instead, like go-yamux's
        # ConnectionWriteTimeout: a connection that takes no frame in that time is closed.
        async with self._write_lock:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + FRAME_WRITE_TIMEOUT_S) as scope:
                await self.secured_conn.write(data)
            if scope.cancelled_caught:
                self._shut_down(f"a frame took over {FRAME_WRITE_TIMEOUT_S} s to write")
                raise RawConnError(f"connection closed: a frame took over {FRAME_WRITE_TIMEOUT_S} s to write")
        await trio.lowlevel.checkpoint()

    async def open_stream(self) -> Any:
        # py-libp2p registers the stream, taking one of 256 backlog slots, then sends SYN; it
        # gives both back if the SYN fails but not if the opener is cancelled while it waits
        # to write, so every such cancel (an open timing out behind a busy connection) lost a
        # slot for the connection's life, and the 257th left it unable to open a stream.
        stream_id = self.next_stream_id
        try:
            return await super().open_stream()
        except BaseException:
            stream = self.streams.get(stream_id)
            if stream is not None and stream.is_initiator:  # registered, never handed out
                with trio.CancelScope(shield=True):
                    async with self.streams_lock:
                        stream.closed = stream.send_closed = stream.recv_closed = True
                        self._finalize_stream_locked(stream, fully_closed=True)
            raise


# py-libp2p builds `Yamux(...)` by name for /yamux/1.0.0 whatever class muxer_opt names.
_muxer_multistream.Yamux = _Yamux  # type: ignore[misc]


class _IndexedTrioManager(TrioManager):
    """libp2p's service manager with an O(1) parent lookup for run_task.

    libp2p walks every live task of the service on each spawn to find the caller's
    task: quadratic in bursts. One task per incoming message or subscription (pitfall 6)
    made a peer's hello with 850 topics take 10 s of CPU. The caller's trio task maps
    to the same FunctionTask (or to none) for its whole life, so the answer is cached.
    """

    def __init__(self, service: Any) -> None:
        super().__init__(service)
        self._parents: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _find_parent_task(self, trio_task: Any) -> Any:
        try:
            return self._parents[trio_task]
        except KeyError:
            parent = self._parents[trio_task] = super()._find_parent_task(trio_task)
            return parent


@asynccontextmanager
async def _service(service: Any) -> AsyncIterator[None]:
    """background_trio_service with our manager (same body, libp2p 0.8.1 context.py)."""
    async with trio.open_nursery() as nursery:
        manager = _IndexedTrioManager(service)
        service._manager = manager
        nursery.start_soon(manager.run)
        await manager.wait_started()
        try:
            yield
        finally:
            await manager.stop()


def _gossipsub() -> GossipSub:
    """GossipSub with every parameter explicit: libp2p's defaults are not the spec's (pitfall 2)."""
    return GossipSub(
        protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11],
        degree=6, degree_low=4, degree_high=12,        # spec D, D_lo, D_hi
        direct_peers=None,
        time_to_live=60,                               # fanout TTL, seconds
        gossip_window=3, gossip_history=5,             # spec mcache_gossip, mcache_len
        heartbeat_initial_delay=0.1,
        heartbeat_interval=1,                          # spec 1 s (libp2p default 120 s)
        direct_connect_initial_delay=0.1, direct_connect_interval=300,
        do_px=False, px_peers_count=16,
        prune_back_off=60, unsubscribe_back_off=10,
        score_params=ScoreParams(),                    # permissive: no peer is graylisted
        max_idontwant_messages=10,
        adaptive_gossip_enabled=False,                 # "simplified" heuristics that move the heartbeat
        spam_protection_enabled=False,                 # 10 msg/s cap that also hits our own publishes
        max_messages_per_topic_per_second=math.inf,
        eclipse_protection_enabled=False,              # counts distinct IPs: meaningless on a LAN or loopback
        min_mesh_diversity_ips=1,
        max_pending_messages_per_peer=100, pending_messages_ttl=30.0,
    )


# -- the host ------------------------------------------------------------------------------

class P2PHost:
    """A running libp2p host. Build it with `open_host`; every method needs it running."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self._key = _key_pair(config.seed)
        self._id = ID.from_pubkey(self._key.public_key)
        self.peer_id: str = self._id.to_base58()
        try:
            self._listen = [multiaddr.Multiaddr(a) for a in config.listen]
        except Exception as exc:
            raise P2PLocalError(f"bad listen address in {config.listen}: {exc}") from exc
        swarm = new_swarm(
            key_pair=self._key,
            # Noise only: the default also accepts plaintext, SECIO and TLS (pitfall 8).
            sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(self._key, noise_privkey=new_x25519_key_pair().private_key)},
            muxer_opt={YAMUX_PROTOCOL_ID: _Yamux},
            listen_addrs=self._listen,  # must be given here, not only to run() (pitfall 9)
            # One connection per peer ends the dial at once instead of a 250 ms wait (pitfall 1).
            connection_config=ConnectionConfig(max_connections_per_peer=1, dial_timeout=DIAL_TIMEOUT,
                                               inbound_stream_protocol_negotiation_timeout=NEGOTIATION_TIMEOUT_S),
            retry_config=RetryConfig(max_retries=0),  # we time out and report; callers decide to retry
        )
        self._host = _Host(self, network=swarm, enable_mDNS=config.mdns)
        self._gates: dict[str, tuple[Callable[[str], bool], frozenset[str]]] = {}
        self._add_conn = swarm.add_conn
        swarm.add_conn = self._gated_add_conn  # type: ignore[method-assign]  # every new connection, both ways
        # The budget (node/core/budget.py): every connection is charged when added and given
        # back when libp2p removes it; every incoming stream before it negotiates a protocol.
        self._budget = Budget(config.limits)
        self._charged_conns: dict[Any, str | None] = {}  # muxed connection -> the address charged
        self._remove_conn = swarm.remove_conn
        swarm.remove_conn = self._uncharged_remove_conn  # type: ignore[method-assign]
        self._negotiate = swarm.common_stream_handler  # BasicHost's: multistream-select, then ours
        swarm.common_stream_handler = self._budgeted_stream  # type: ignore[method-assign]
        # Circuit relay v2: every host accepts relayed connections (the stop side); a relay
        # host also relays (hop). Reservations are ours (P2PHost.set_relays), not libp2p's
        # discovery, which caches "no protocols" for a relay seen before identify (pitfall 12).
        limits = config.hop or CircuitLimits()
        self._circuit = _HopService(
            self._host, allow_hop=config.hop is not None,
            limits=RelayLimits(duration=limits.duration_s, data=limits.data_bytes,
                               max_circuit_conns=limits.max_circuits_per_peer,
                               max_reservations=limits.max_reservations,
                               reservation_ttl=limits.reservation_ttl_s))
        self._circuit.owner = self
        # DCUtR (/libp2p/dcutr): libp2p's service looks at our connections every 2 s and, for a
        # peer reached only through a relay, dials its addresses, then coordinates a TCP
        # simultaneous open through the relayed connection (both sides dial from their listen
        # port at once). On success streams move to the direct connection and the relayed one
        # is closed 60 s later; on failure (3 tries) the relayed connection simply stays.
        # max_connections_per_peer=1 (pitfall 1) does not undo a punch: libp2p trims only when
        # a connection is added, never one younger than 20 s (the new direct one), so at most
        # the relayed one goes early. A relay is public: it has nothing to punch.
        self._dcutr = DCUtRProtocol(self._host) if config.hole_punch and config.hop is None else None
        self._reservation_policy: Callable[[str], bool] | None = None
        self._relays: Callable[[], set[str]] = set
        self._reserved: dict[str, tuple[float, list[str]]] = {}  # relay -> (expires, our circuit addrs)
        self._relay_addrs: dict[str, str] = {}                    # relay -> the address we reached it on
        self._reserve_wake = trio.Event()
        self._pubsub: _Pubsub | None = None
        self._router: GossipSub | None = None
        if config.pubsub:
            self._router = _gossipsub()
            self._pubsub = _Pubsub(self._host, self._router, strict_signing=True,
                                   max_subscriptions_per_peer=MAX_TOPICS_PER_PEER)
            self._pubsub.owner = self
        self._subs: dict[str, Subscription] = {}
        self._validators: dict[str, Callable[[str, bytes], bool]] = {}
        self._pub_send, self._pub_recv = trio.open_memory_channel[tuple[str, bytes]](config.publish_queue)
        self._peer_found: Callable[[str, list[str]], None] | None = None
        self._discovered: dict[str, list[str]] = {}
        self._running = False
        self._stats = dict(published=0, received=0, dropped=0, own_filtered=0, rejected=0,
                           streams_opened=0, streams_accepted=0, handler_errors=0, gated_connections=0,
                           gated_streams=0, gated_rpcs=0, reservations_granted=0, reservations_refused=0,
                           relayed_dials=0)

    # -- lifecycle (see open_host) --

    async def _run(self, stack: AsyncExitStack) -> None:
        # Callbacks run in reverse: flush, stop our tasks, stop pubsub, stop listening,
        # close the host, stop the seen-messages thread.
        if self._pubsub is not None:
            # The seen-messages cache runs a thread per Pubsub, from construction on (pitfall 10).
            stack.callback(self._pubsub.seen_messages.stop)
        stack.push_async_callback(self._host.close)  # ports, identify tasks, mDNS (pitfall 10)
        if self.config.mdns:  # before run(): a peer may answer while mDNS starts (pitfall 13)
            handler = self._mdns_handler(trio.lowlevel.current_trio_token())
            peerDiscovery.register_peer_discovered_handler(handler)
            stack.callback(peerDiscovery.unregister_peer_discovered_handler, handler)
        await stack.enter_async_context(self._host.run(self._listen))
        if self._pubsub is not None and self._router is not None:
            await stack.enter_async_context(_service(self._pubsub))
            await stack.enter_async_context(_service(self._router))
            await self._pubsub.wait_until_ready()
        await stack.enter_async_context(_service(self._circuit))
        if self._dcutr is not None:
            await stack.enter_async_context(_service(self._dcutr))
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        nursery.start_soon(self._keep_reservations)
        if self._pubsub is not None:
            nursery.start_soon(self._publisher)
            stack.push_async_callback(self._flush)
        self._running = True
        stack.callback(setattr, self, "_running", False)

    def _check(self) -> None:
        if not self._running:
            raise P2PLocalError("the host is not running")

    # -- addresses and peers --

    def addrs(self) -> list[str]:
        """Full listen multiaddrs with /p2p/<peer id>, with the real ports, then our circuit
        addresses (`<relay addr>/p2p/<relay>/p2p-circuit/p2p/<us>`) on the relays that hold a
        reservation for us."""
        direct = [str(a) for a in self._host.get_addrs() if CIRCUIT not in str(a)]
        return direct + [a for _, addrs in self._reserved.values() for a in addrs]

    # -- gating --

    def set_gate(self, name: str, fn: Callable[[str], bool] | None, *, explain: tuple[str, ...] = ()) -> None:
        """Gate `name`: fn(peer_id) False shuts the peer out. None removes the gate.

        A shut-out peer's new connections (incoming, outgoing, relayed) are closed before any
        stream opens; we send it no pubsub message, hello or control; its streams are reset
        and ours to it refused. Checked on every connection, stream and outgoing pubsub RPC,
        so a gate that closes on a connected peer takes effect at once (the owner hangs up).
        `explain` names protocols a peer shut out by this gate may still use (a relay tells a
        blocked user why): such a peer's connection is kept, restricted to them, and the
        owner must hang up on it. Every gate is asked; fn must be cheap and must not raise.
        """
        if fn is None:
            self._gates.pop(name, None)
        else:
            self._gates[name] = (fn, frozenset(explain))

    def _refusal(self, peer: ID) -> frozenset[str] | None:
        """None if every gate admits peer, else the protocols it may still use."""
        if not self._gates:
            return None
        peer_id = peer.to_base58()
        allowed: frozenset[str] | None = None
        for fn, explain in list(self._gates.values()):
            try:
                ok = fn(peer_id)
            except Exception:
                log.exception("connection gate raised; the peer is shut out")
                ok = False
            if not ok:
                allowed = explain if allowed is None else allowed & explain
        return allowed

    def _may_use(self, peer: ID, protocol: str) -> bool:
        refusal = self._refusal(peer)
        return refusal is None or protocol in refusal

    async def _gated_add_conn(self, muxed_conn: Any, direction: str = "unknown") -> Any:
        # Runs after the security handshake (the peer id is proven) and before the muxer
        # starts: a refused connection never carries a stream.
        refusal = self._refusal(muxed_conn.peer_id)
        if refusal is not None and not refusal:
            self._stats["gated_connections"] += 1
            log.info("refusing a connection (%s) from gated peer %s", direction, muxed_conn.peer_id)
            await self._close_refused(muxed_conn)
            raise SwarmException(f"peer {muxed_conn.peer_id} is gated")
        if muxed_conn not in self._charged_conns:  # libp2p may add one connection twice (its dedup)
            # Connections we dial count in the total only; the rest also per source address.
            ip = None if direction == "outbound" else _remote_ip(muxed_conn)
            over = self._budget.open_connection(muxed_conn.peer_id.to_base58(), ip, trio.current_time())
            if over is not None:
                log.debug("refusing a connection (%s) from %s at %s: %s", direction, muxed_conn.peer_id, ip, over)
                await self._close_refused(muxed_conn)
                raise SwarmException(f"connection from {muxed_conn.peer_id} refused: {over}")
            self._charged_conns[muxed_conn] = ip
        try:
            conn = await self._add_conn(muxed_conn, direction)
        except BaseException:
            self._release_conn(muxed_conn)
            raise
        if muxed_conn.peer_id.to_base58() in self._relays():
            self._reserve_wake.set()
        return conn

    @staticmethod
    async def _close_refused(muxed_conn: Any) -> None:
        try:
            await muxed_conn.close()
        except Exception as exc:
            log.debug("close of a refused connection: %r", exc)

    def _uncharged_remove_conn(self, swarm_conn: Any) -> None:
        self._remove_conn(swarm_conn)
        self._release_conn(swarm_conn.muxed_conn)

    def _release_conn(self, muxed_conn: Any) -> None:
        if muxed_conn in self._charged_conns:
            self._budget.close_connection(self._charged_conns.pop(muxed_conn))

    async def _budgeted_stream(self, net_stream: Any) -> None:
        """Every incoming stream, before multistream-select: charge it or reset it."""
        muxed = net_stream.muxed_conn
        peer, ip = muxed.peer_id.to_base58(), _remote_ip(muxed)
        over = self._budget.open_stream(peer, ip, STREAM_WINDOW)
        if over is not None:
            log.debug("refusing a stream from %s: %s", peer, over)
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await net_stream.reset()
                except Exception as exc:  # already gone: nothing to refuse
                    log.debug("reset of a refused stream: %r", exc)
            return
        ticket = _Ticket(self._budget, peer, ip, STREAM_WINDOW)
        net_stream.murmurate_ticket = ticket  # serve() hands it to the Stream, for Stream.hold
        try:
            await self._negotiate(net_stream)
        finally:
            ticket.release()

    def is_relayed(self, peer_id: str) -> bool | None:
        """True if every connection to peer_id goes through a relay; None if not connected."""
        conns = self._host.get_network().get_connections(ID.from_base58(peer_id))
        if not conns:
            return None
        return all(getattr(c, "get_connection_type", lambda: None)() == ConnectionType.RELAYED for c in conns)

    # -- circuit relay v2: reservations (the reachable side) --

    def set_relays(self, relays: Callable[[], set[str]]) -> None:
        """relays() names the relays (peer ids) to hold a reservation on while connected.

        While we are connected to one, we reserve a slot (renewed before it expires) and
        addrs() lists our circuit address through it; when the connection drops, so does
        the address, and the next connection reserves again.
        """
        self._relays = relays
        self._reserve_wake.set()

    def set_reservation_policy(self, fn: Callable[[str], bool] | None) -> None:
        """On a relay host (HostConfig.hop): fn(peer_id) says who may reserve. None: anyone."""
        self._reservation_policy = fn

    async def _keep_reservations(self) -> None:
        failed: dict[str, float] = {}  # relay -> when to try again after a refusal
        while True:
            connected = set(self.connected_peers())
            now = trio.current_time()
            wanted = self._relays() & connected
            for relay in list(self._reserved):
                if relay not in wanted:  # the connection dropped: the relay forgot us
                    del self._reserved[relay]
            for relay in wanted:
                expires = self._reserved.get(relay, (0.0, []))[0]
                if expires - now > RESERVE_RENEW_S or failed.get(relay, 0.0) > now:
                    continue
                try:
                    ttl, addrs = await self._reserve(relay)
                except P2PError as exc:
                    failed[relay] = now + 30.0
                    log.info("no reservation on relay %s: %s", relay, exc)
                    continue
                failed.pop(relay, None)
                self._reserved[relay] = (trio.current_time() + ttl, addrs)
                log.info("reserved a slot on relay %s for %d s: reachable at %s", relay, ttl, " ".join(addrs))
            self._reserve_wake = trio.Event()
            with trio.move_on_after(RESERVE_TICK_S):
                await self._reserve_wake.wait()

    async def _reserve(self, relay: str) -> tuple[float, list[str]]:
        """One RESERVE on a fresh hop stream. Returns (seconds valid, our circuit addrs)."""
        relay_id = ID.from_base58(relay)
        with trio.move_on_after(DIAL_TIMEOUT) as scope:
            try:
                stream = await self._host.new_stream(relay_id, [HOP_PROTOCOL_ID])
                try:
                    await write_delimited_msg(stream, HopMessage(type=HopMessage.RESERVE,
                                                                 peer=CircuitPeerId(id=self._id.to_bytes())))
                    answer = await read_delimited_msg(stream, HopMessage)
                finally:
                    await stream.close()
            except Exception as exc:
                raise P2PRemoteError(f"reservation on {relay} failed: {exc}") from exc
        if scope.cancelled_caught:
            raise P2PRemoteError(f"reservation on {relay} timed out after {DIAL_TIMEOUT} s")
        status = StatusCode(answer.status) if answer.HasField("status") else StatusCode.OK
        if status != StatusCode.OK or not answer.HasField("reservation"):
            raise P2PRemoteError(f"relay {relay} refused the reservation ({status.name})")
        bases = []
        for raw in answer.reservation.addrs:
            try:
                bases.append(str(multiaddr.Multiaddr(raw)))
            except Exception:
                continue
        if not bases and relay in self._relay_addrs:  # a relay on 0.0.0.0 lists none: use what we dialled
            bases.append(self._relay_addrs[relay])
        suffix = f"/p2p/{relay}"
        addrs = [f"{b if b.endswith(suffix) else b + suffix}{CIRCUIT}/p2p/{self.peer_id}" for b in bases]
        ttl = max(0.0, answer.reservation.expire - time.time())  # the relay states a wall-clock expiry
        return ttl, addrs

    def connected_peers(self) -> list[str]:
        return sorted(p.to_base58() for p in self._host.get_connected_peers())

    async def disconnect(self, peer_id: str) -> None:
        """Close every connection to `peer_id` (used to cut off a misbehaving peer)."""
        self._check()
        try:
            await self._host.disconnect(ID.from_base58(peer_id))
        except Exception as exc:  # already gone, or libp2p's own teardown error: nothing more to do
            log.debug("disconnect %s: %r", peer_id, exc)

    async def dial(self, addr: str, timeout: float = DIAL_TIMEOUT) -> str:
        """Connect to a multiaddr ending in /p2p/<peer id>; return that peer id.

        Raises P2PLocalError for a malformed address or a dial to ourselves, and
        P2PRemoteError if the peer cannot be reached within `timeout` seconds.
        """
        self._check()
        if CIRCUIT in addr:
            return await self._dial_circuit(addr, timeout)
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:
            raise P2PLocalError(f"not a dialable multiaddr with /p2p/: {addr!r} ({exc})") from exc
        if info.peer_id == self._id:
            raise P2PLocalError("cannot dial ourselves")
        if info.peer_id in self._host.get_connected_peers():
            return info.peer_id.to_base58()
        if self._refusal(info.peer_id) is not None:
            raise P2PLocalError(f"{info.peer_id} is gated: not dialling it")
        swarm = self._host.get_network()
        self._relay_addrs[info.peer_id.to_base58()] = addr.rsplit("/p2p/", 1)[0]
        with trio.move_on_after(timeout) as scope:
            try:
                # Dial exactly this address. host.connect() would let libp2p choose among every
                # address it ever learned for the peer (dropping loopback ones, trying one per
                # transport) and block the peer for 60 s after a failure: an address the peer
                # announced but we cannot reach would then hide the one we were given.
                swarm.unblock_peer(info.peer_id)
                self._host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
                await swarm.dial_addr(info.addrs[0], info.peer_id)
            except Exception as exc:  # libp2p raises SwarmException, MultiError, OSError...
                raise P2PRemoteError(f"dial {addr} failed: {exc}") from exc
        if scope.cancelled_caught:
            raise P2PRemoteError(f"dial {addr} timed out after {timeout} s")
        return info.peer_id.to_base58()

    async def _dial_circuit(self, addr: str, timeout: float) -> str:
        """Connect to `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<peer>` through that relay.

        The relay must be reachable (we dial it if need be) and the peer must hold a
        reservation on it. The connection is Noise + Yamux end to end, inside one stream of
        our connection to the relay: the relay sees only ciphertext.
        """
        relay_part, _, target = addr.partition(CIRCUIT)
        try:
            peer = ID.from_base58(target.removeprefix("/p2p/"))
            relay = info_from_p2p_addr(multiaddr.Multiaddr(relay_part)).peer_id
            circuit_ma = multiaddr.Multiaddr(f"/p2p/{relay.to_base58()}{CIRCUIT}/p2p/{peer.to_base58()}")
        except Exception as exc:
            raise P2PLocalError(f"not a circuit address <relay>/p2p-circuit/p2p/<peer>: {addr!r} ({exc})") from exc
        if not target.startswith("/p2p/") or peer == self._id or relay == self._id:
            raise P2PLocalError(f"not a circuit address to another peer: {addr!r}")
        if peer in self._host.get_connected_peers():
            return peer.to_base58()
        if self._refusal(peer) is not None:
            raise P2PLocalError(f"{peer} is gated: not dialling it")
        with trio.move_on_after(timeout) as scope:
            if relay not in self._host.get_connected_peers():
                await self.dial(relay_part, timeout)
            try:
                stream = await self._host.new_stream(relay, [HOP_PROTOCOL_ID])
            except Exception as exc:
                raise P2PRemoteError(f"relay {relay} does not relay: {exc}") from exc
            try:
                await write_delimited_msg(stream, HopMessage(type=HopMessage.CONNECT,
                                                             peer=CircuitPeerId(id=peer.to_bytes())))
                answer = await read_delimited_msg(stream, HopMessage)
                status = StatusCode(answer.status) if answer.HasField("status") else StatusCode.OK
                if status != StatusCode.OK:
                    raise P2PRemoteError(f"relay {relay} cannot connect us to {peer} ({status.name})")
                raw = RawConnection(stream=stream, initiator=True, connection_type=ConnectionType.RELAYED,
                                    addresses=[circuit_ma])
                await self._host.get_network().upgrade_outbound_raw_conn(raw, peer)
            except P2PError:
                await stream.reset()
                raise
            except BaseException as exc:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await stream.reset()
                if isinstance(exc, Exception):
                    raise P2PRemoteError(f"dial {addr} failed: {exc}") from exc
                raise
        if scope.cancelled_caught:
            raise P2PRemoteError(f"dial {addr} timed out after {timeout} s")
        self._stats["relayed_dials"] += 1
        return peer.to_base58()

    def on_peer_found(self, callback: Callable[[str, list[str]], None] | None) -> None:
        """Call callback(peer_id, addrs) in trio for each mDNS discovery (HostConfig.mdns).

        Peers found before the callback was set are replayed to it at once: the first
        discoveries often happen while the host starts.
        """
        self._peer_found = callback
        for peer, addrs in list(self._discovered.items()):
            self._found(peer, addrs)

    def _mdns_handler(self, token: trio.lowlevel.TrioToken) -> Callable[[Any], None]:
        def on_discovery(info: Any) -> None:  # runs on a zeroconf thread (pitfall 13)
            peer, addrs = info.peer_id.to_base58(), [str(a) for a in info.addrs]
            if peer != self.peer_id:  # the handler list is process-wide: skip ourselves
                try:
                    token.run_sync_soon(self._found, peer, addrs)
                except trio.RunFinishedError:
                    pass
        return on_discovery

    def _found(self, peer: str, addrs: list[str]) -> None:
        self._discovered[peer] = addrs
        if self._peer_found is not None:
            try:
                self._peer_found(peer, addrs)
            except Exception:
                log.exception("on_peer_found callback failed")

    # -- streams --

    async def open_stream(self, peer_id: str, protocol: str, timeout: float = DIAL_TIMEOUT) -> Stream:
        """Open a stream to a peer we can reach. Raises P2PRemoteError if refused or unreachable."""
        self._check()
        with trio.move_on_after(timeout) as scope:
            try:
                net_stream = await self._host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol)])
            except Exception as exc:
                raise P2PRemoteError(f"cannot open {protocol} to {peer_id}: {exc}") from exc
        if scope.cancelled_caught:
            raise P2PRemoteError(f"opening {protocol} to {peer_id} timed out after {timeout} s")
        ip = _remote_ip(net_stream.muxed_conn)
        over = self._budget.open_stream(peer_id, ip, STREAM_WINDOW)
        if over is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await net_stream.reset()
            raise BudgetExceededError(f"cannot open {protocol} to {peer_id}: {over}")
        self._stats["streams_opened"] += 1
        return Stream(net_stream, peer_id, protocol, _Ticket(self._budget, peer_id, ip, STREAM_WINDOW),
                      outgoing=True)

    def serve(self, protocol: str, handler: Callable[[Stream], Awaitable[None]]) -> None:
        """Run handler(stream) for each incoming stream on protocol.

        The stream is closed when the handler returns (and reset if the peer has not closed
        its side within LINGER_S). If it raises, the error is logged and counted
        (handler_errors), the stream is reset, and the host runs on: libp2p itself would
        swallow the error without a word (pitfall 11). A BudgetExceededError is no bug: it
        is counted (budget_refused_*) and the stream was already reset.
        """
        async def run(net_stream: Any) -> None:
            stream = Stream(net_stream, net_stream.muxed_conn.peer_id.to_base58(), protocol,
                            getattr(net_stream, "murmurate_ticket", None))
            self._stats["streams_accepted"] += 1
            try:
                await handler(stream)
            except BudgetExceededError as exc:
                log.debug("%s", exc)
                return
            except Exception:
                self._stats["handler_errors"] += 1
                log.exception("handler for %s from %s failed", protocol, stream.remote_peer)
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await stream.reset()
                return
            except BaseException:  # cancelled: the host is closing
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await stream.reset()
                raise
            await stream.close()
            await stream._linger()

        self._host.set_stream_handler(TProtocol(protocol), run)

    # -- pubsub --

    def _ps(self) -> _Pubsub:
        self._check()
        if self._pubsub is None:
            raise P2PLocalError("pubsub is off in this host's config")
        return self._pubsub

    async def publish(self, topic: str, data: bytes) -> None:
        """Queue data for topic. Blocks while HostConfig.publish_queue messages wait.

        Our own queue, drained at a bounded rate while every peer's libp2p queue has room,
        because libp2p drops silently past 32 per peer and has no flush (pitfall 3).
        Closing the host waits up to FLUSH_TIMEOUT for the queue to empty.
        """
        self._ps()
        await self._pub_send.send((topic, data))

    async def _publisher(self) -> None:
        assert self._pubsub is not None
        interval = 1 / self.config.publish_rate
        async for topic, data in self._pub_recv:
            await self._wait_for_room()
            await self._pubsub.publish(topic, data)
            self._stats["published"] += 1
            await trio.sleep(interval)

    async def _wait_for_room(self) -> None:
        """Wait until every peer's libp2p outbound queue has room (pitfall 3: it drops past 32)."""
        assert self._pubsub is not None
        while any(len(q) >= PEER_QUEUE_HIGH for q in self._pubsub.peer_queues.values()):
            await trio.sleep(0.005)  # libp2p has no drain event: poll

    async def _flush(self) -> None:
        """Let queued publishes leave before closing (pitfall 3: libp2p has no flush)."""
        assert self._pubsub is not None
        with trio.move_on_after(FLUSH_TIMEOUT):
            while self._pub_recv.statistics().current_buffer_used or any(
                    len(q) for q in self._pubsub.peer_queues.values()):
                await trio.sleep(0.01)

    async def subscribe(self, topic: str) -> Subscription:
        """Join topic and return its Subscription (the same one if already joined)."""
        ps = self._ps()
        if topic not in self._subs:
            # Subscription announcements go through the same 32-slot queues: a burst of
            # subscribes after connecting lost most of them until we paced them (pitfall 3).
            await self._wait_for_room()
            self._subs[topic] = Subscription(topic, self.config.subscription_buffer)
            await ps.subscribe(topic)
        return self._subs[topic]

    async def unsubscribe(self, topic: str) -> None:
        """Leave topic; its Subscription's iteration ends after the buffered messages."""
        ps = self._ps()
        sub = self._subs.pop(topic, None)
        if sub is not None:
            sub._send.close()
            await self._wait_for_room()
            await ps.unsubscribe(topic)

    def topic_peers(self, topic: str) -> list[str]:
        """Connected peers known to subscribe to `topic` (they hear our publishes on it)."""
        if self._pubsub is None:
            return []
        return sorted(p.to_base58() for p in self._pubsub.peer_topics.get(topic, set()))

    async def wait_for_mesh(self, peer_id: str, topic: str, timeout: float = 5.0) -> None:
        """Wait until peer_id is in our GossipSub mesh for topic: our publishes reach it.

        Raises P2PRemoteError after timeout seconds (the peer did not join the topic).
        """
        ps = self._ps()
        try:
            await ps.wait_for_mesh(ID.from_base58(peer_id), topic, timeout=timeout)
        except trio.TooSlowError:
            raise P2PRemoteError(f"{peer_id} not in our mesh for {topic} after {timeout} s") from None

    def set_validator(self, topic: str, fn: Callable[[str, bytes], bool] | None) -> None:
        """fn(from_peer, data) -> bool judges messages from other peers on topic.

        `topic` ending in "*" is a prefix ("feed/*"); an exact topic wins over a prefix,
        then the longest prefix. A message judged False (or whose validator raises) is
        neither delivered nor forwarded. Our own publishes are not judged. None removes.
        """
        if fn is None:
            self._validators.pop(topic, None)
        else:
            self._validators[topic] = fn

    def _validator_for(self, topic: str) -> Callable[[ID, Any], bool] | None:
        fn = self._validators.get(topic)
        if fn is None:
            prefixes = [k for k in self._validators if k.endswith("*") and topic.startswith(k[:-1])]
            if not prefixes:
                return None
            fn = self._validators[max(prefixes, key=len)]

        def judge(forwarder: ID, msg: Any) -> bool:
            if forwarder == self._id:
                return True
            try:
                ok = bool(fn(ID(msg.from_id).to_base58(), msg.data))
            except Exception:
                log.exception("validator for %s raised; message rejected", topic)
                ok = False
            if not ok:
                self._stats["rejected"] += 1
            return ok
        return judge

    def _deliver(self, msg: Any) -> None:
        sender = ID(msg.from_id)
        if sender == self._id:
            self._stats["own_filtered"] += 1  # pitfall 7: libp2p hands us our own publishes
            return
        for topic in msg.topicIDs:
            sub = self._subs.get(topic)
            if sub is None:
                continue
            self._stats["received"] += 1
            if not sub._offer(Message(sender.to_base58(), topic, msg.data)):
                self._stats["dropped"] += 1

    def statistics(self) -> dict[str, int]:
        """Counters since start, plus current peers, topics and queued publishes."""
        return {**self._stats, "peers": len(self._host.get_connected_peers()), "topics": len(self._subs),
                "publish_queued": self._pub_recv.statistics().current_buffer_used, **self._budget.usage()}


@asynccontextmanager
async def open_host(config: HostConfig) -> AsyncIterator[P2PHost]:
    """Start a host; on exit flush publishes and close everything (tasks, ports, threads).

    Raises P2PLocalError for a bad config, P2PError if libp2p cannot listen.
    """
    host = P2PHost(config)
    async with AsyncExitStack() as stack:
        try:
            await host._run(stack)
        except P2PError:
            raise
        except OSError as exc:
            raise P2PLocalError(f"cannot listen on {config.listen}: {exc}") from exc
        yield host
