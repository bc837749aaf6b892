"""The user's side of `/murmurate/relay/1.0.0`: one request, one answer."""

from __future__ import annotations

import trio

from murmurate.crypto import SigningIdentity

from ..core import framing
from ..errors import NodeError
from ..p2p import P2PError, P2PHost, peer_id_from_public_key
from . import protocol as p

TIMEOUT_S = 15.0


class RelayRefusedError(NodeError):
    """The relay said no; `code` is one of the refusal codes of node/relay/protocol.py."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"the relay refused: {message} ({code})")
        self.code = code


async def reach(host: P2PHost, code: p.RelayCode) -> str:
    """Dial the relay at one of the code's addresses. Returns its peer id. Raises NodeError."""
    peer_id = peer_id_from_public_key(code.public_key)
    errors = []
    for addr in code.addrs:
        try:
            await host.dial(addr if "/p2p/" in addr else f"{addr}/p2p/{peer_id}")
            return peer_id
        except P2PError as e:
            errors.append(str(e))
    raise NodeError(f"cannot reach the relay: {'; '.join(errors)}")


async def request(host: P2PHost, peer_id: str, message: p.Message) -> dict:
    """Send one request; return the `ok` answer's user map. Raises RelayRefusedError, NodeError."""
    try:
        with trio.fail_after(TIMEOUT_S):
            stream = await host.open_stream(peer_id, p.PROTOCOL)
            try:
                await stream.write(framing.encode(p.encode(message)))
                await stream.close()
                decoder = framing.FrameDecoder(p.MAX_MESSAGE_BYTES)
                while (body := decoder.next_frame()) is None:
                    data = await stream.read(p.MAX_MESSAGE_BYTES)
                    if not data:
                        raise NodeError("the relay closed the stream without an answer")
                    decoder.feed(data)
            finally:
                await stream.close()
    except trio.TooSlowError:
        raise NodeError(f"the relay did not answer within {TIMEOUT_S} s") from None
    except P2PError as e:
        raise NodeError(f"the relay protocol failed: {e}") from None
    except framing.FrameError as e:
        raise NodeError(f"the relay sent a bad answer: {e}") from None
    try:
        answer = p.decode(body)
    except p.RelayProtocolError as e:
        raise NodeError(f"the relay sent a bad answer: {e}") from None
    if isinstance(answer, p.Refused):
        raise RelayRefusedError(answer.code, answer.message)
    if not isinstance(answer, p.Ok):
        raise NodeError("the relay answered with a request")
    return answer.user


async def join(host: P2PHost, identity: SigningIdentity, code: p.RelayCode, now_ms: int) -> tuple[str, dict]:
    """Reach the relay and present the code's token, signed. Returns (relay peer id, account)."""
    peer_id = await reach(host, code)
    return peer_id, await request(host, peer_id, p.make_join(identity, code.public_key, code.token, now_ms))


def code_from_book(peer_id: str, addrs: list[str]) -> p.RelayCode:
    """A token-less code for a relay known from the peer book (to dial it again)."""
    from ..p2p import public_key_from_peer_id

    key = public_key_from_peer_id(peer_id)
    if key is None or not addrs:
        raise NodeError(f"no way to reach relay {peer_id}")
    return p.RelayCode(key, tuple(addrs))
