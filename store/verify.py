"""Signature checks for batches, spread over the machine's cores.

PyNaCl's C calls release the GIL, so threads verify in parallel: on two cores a batch
verifies about twice as fast as one core could (bench/ingest.py shows the figures).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from murmurate.crypto import verify_signature

from .entry import SIGNING_DOMAIN, Envelope

_PARALLEL_FROM = 64
_WORKERS = max(1, min(8, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


def _check_all(envelopes: Sequence[Envelope]) -> list[bool]:
    return [verify_signature(e.author, SIGNING_DOMAIN + e.body, e.signature) for e in envelopes]


def verify_signatures(envelopes: Sequence[Envelope]) -> list[bool]:
    """One bool per envelope: True if its author signed it."""
    global _pool
    if len(envelopes) < _PARALLEL_FROM or _WORKERS == 1:
        return _check_all(envelopes)
    if _pool is None:
        _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="murmurate-verify")
    size = -(-len(envelopes) // _WORKERS)
    chunks = [envelopes[i:i + size] for i in range(0, len(envelopes), size)]
    futures = [_pool.submit(_check_all, chunk) for chunk in chunks[1:]]
    results = _check_all(chunks[0])
    for future in futures:
        results.extend(future.result())
    return results
