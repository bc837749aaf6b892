"""The pure peer-id derivation agrees with py-libp2p's."""

from hypothesis import given
from hypothesis import strategies as st

from murmurate.crypto import SigningIdentity
from murmurate.node.core.peer_ids import author_of_peer, peer_of_author
from murmurate.node.p2p import peer_id_from_public_key


@given(st.binary(min_size=32, max_size=32))
def test_same_peer_id_as_libp2p(seed: bytes) -> None:
    key = SigningIdentity(seed).public_key
    assert peer_of_author(key) == peer_id_from_public_key(key)
    assert author_of_peer(peer_of_author(key)) == key


def test_other_ids_are_not_authors() -> None:
    assert author_of_peer("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N") is None
    assert author_of_peer("not base58 0OIl") is None
