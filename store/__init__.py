"""The store: the entry format, feed rules, and the LMDB database that holds feeds.

Pure parts (entry, feed, canonical, payloads, records) import no LMDB. The I/O: env (the
environment and its write context), the concern modules (feeds, log, timelines, social,
blobs, settings, audit) and lmdb_store (the read-only StoreView and the writable Store).
"""

from .canonical import CanonicalError
from .entry import (FORMAT_VERSION, MAX_CLOCK_SKEW_MS, MAX_ENVELOPE_SIZE, MAX_PAYLOAD_SIZE, Entry,
                    Envelope, PayloadType, check_payload, check_signature, check_timestamp,
                    create_entry, decode_envelope, decode_frame, decode_payload_bytes, encode_frame, entry_frame_size,
                    payload_limit)
from .errors import (ArchiveError, InvalidEntryError, LocalStoreError, NotFoundError, Reason,
                     SchemaTooNewError, StoreError, StoreFullError)
from .feed import FeedHead, Placement, place
from .lmdb_store import (SCHEMA_VERSION, WRITE_METHODS, Commit, FeedInfo, IngestReport, Page, Rejected, Store,
                         StoredEntry, StoreView)
from .payloads import Ref, normalize_tag, post_index, read_ref, ref_value

__all__ = [
    "CanonicalError",
    "FORMAT_VERSION", "MAX_CLOCK_SKEW_MS", "MAX_ENVELOPE_SIZE", "MAX_PAYLOAD_SIZE", "Entry",
    "Envelope", "PayloadType", "check_payload", "check_signature", "check_timestamp",
    "create_entry", "decode_envelope", "decode_frame", "decode_payload_bytes", "encode_frame", "entry_frame_size",
    "payload_limit",
    "ArchiveError", "InvalidEntryError", "LocalStoreError", "NotFoundError", "Reason",
    "SchemaTooNewError", "StoreError", "StoreFullError",
    "FeedHead", "Placement", "place",
    "SCHEMA_VERSION", "WRITE_METHODS", "Commit", "FeedInfo", "IngestReport", "Page", "Rejected", "Store",
    "StoredEntry", "StoreView",
    "Ref", "normalize_tag", "post_index", "read_ref", "ref_value",
]
