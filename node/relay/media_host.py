"""The relay's media hosting: it fetches the blobs its users' posts and profiles name, within
each user's media quota, so followers get the pictures too while the author is away.

The decisions (which blobs a payload names, whether one fits, what is counted) are pure
functions in policy.py over the store's local settings; this is the trio shell. What to
fetch is written down (policy.WANT) before it is fetched, so a restart loses nothing: a
blob no connected peer has yet is tried again every `resync_s`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from murmurate.crypto import encode_id
from murmurate.store import InvalidEntryError, Store, decode_payload_bytes

from .. import media
from ..core.media import MEDIA_TYPES, named_blobs
from ..p2p import P2PError, peer_id_from_public_key
from . import policy

if TYPE_CHECKING:
    from .relay import Relay

log = logging.getLogger("murmurate.relay")

SCAN_CHUNK = 500  # entries read per writer job while scanning a feed for media


class MediaHost:
    def __init__(self, relay: "Relay") -> None:
        self.relay = relay
        self._touched: set[bytes] = set(relay.users)  # users whose feeds may name new media
        self._wake = trio.Event()
        self.fetched = 0
        self.refused = 0

    def note_commit(self, appended: Any, types: Any) -> None:
        """From the relay's commit watcher: users whose own feeds got a post or profile."""
        users = self.relay.users
        for (author, _), ptype in zip(appended, types):
            if ptype in MEDIA_TYPES and author in users:
                self._touched.add(author)
                self._wake.set()

    def note_user(self, user: bytes) -> None:
        """A new user: their feed so far may name media."""
        self._touched.add(user)
        self._wake.set()

    async def run(self) -> None:
        while True:
            touched, self._touched = self._touched, set()
            for user in touched:
                await self._scan(user)
            await self._fetch_wanted()
            with trio.move_on_after(self.relay.config.resync_s):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _scan(self, user: bytes) -> None:
        """Note the media of the user's entries since the last scan (policy.SCANNED)."""
        def scan_some(store: Store) -> bool:
            head = store.head(user)
            done = policy.scanned_to(store, user)
            if head is None or head.seq <= done:
                return False
            last = min(head.seq, done + SCAN_CHUNK)
            for seq in range(done + 1, last + 1):
                stored = store.get(user, seq)
                if stored is None or stored.entry.payload is None:
                    continue
                if stored.entry.envelope.payload_type not in MEDIA_TYPES:
                    continue
                try:
                    payload = decode_payload_bytes(stored.entry.payload)
                except InvalidEntryError:
                    continue
                for blob, size in named_blobs(stored.entry.envelope.payload_type, payload):
                    policy.want_blob(store, user, blob, size)
            policy.set_scanned_to(store, user, last)
            return last < head.seq
        while await self.relay.writer.call(scan_some):
            pass

    async def _fetch_wanted(self) -> None:
        store, quota = self.relay.store, self.relay.config.quota
        for user, blob in await trio.to_thread.run_sync(policy.wanted_blobs, store):
            if user not in self.relay.users:
                await self.relay.writer.call(lambda s, u=user, b=blob: policy.drop_want(s, u, b))
                continue
            held = store.blob_size(blob)  # held already (another user's too): it still counts
            size = held if held is not None else policy.wanted_size(store, user, blob)
            refusal = policy.blob_refusal(policy.blob_usage(store, user), quota, size)
            if refusal:
                self.refused += 1
                log.warning("user %s is %s: not fetching blob %s", encode_id(user), refusal, blob.hex(),
                            extra={"event": "over_media_quota", "user": encode_id(user)})
                await self.relay.writer.call(lambda s, u=user, b=blob: policy.drop_want(s, u, b))
                continue
            if held is None:
                held = await self._fetch(user, blob)
                if held is None:
                    continue  # nobody connected has it yet: tried again later
                self.fetched += 1
            await self.relay.writer.call(lambda s, u=user, b=blob, n=held: policy.count_blob(s, u, b, n))

    async def _fetch(self, user: bytes, blob: bytes) -> int | None:
        """Fetch from the author's node first, then any connected peer. The blob's size, or
        None if no connected peer has it."""
        host, replicator = self.relay.host, self.relay.replicator
        author = peer_id_from_public_key(user)
        connected = host.connected_peers()
        for peer_id in [author] * (author in connected) + [p for p in connected if p != author]:
            if replicator._is_banned(peer_id):
                continue
            try:
                with trio.fail_after(120):
                    size = await media.fetch_blob(host, self.relay.writer, peer_id, blob)
            except media.BlobProtocolError as e:
                replicator._cut_off(peer_id, f"blob: {e}")
                continue
            except (P2PError, trio.TooSlowError) as e:
                log.info("blob %s from %s failed: %s", blob.hex(), peer_id, e)
                continue
            if size is not None:
                log.info("fetched blob %s (%d bytes) of user %s from %s", blob.hex(), size, encode_id(user), peer_id,
                         extra={"event": "blob", "user": encode_id(user), "bytes": size})
                return size
        return None
