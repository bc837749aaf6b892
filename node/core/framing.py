"""Length-prefixed frames over a byte stream. Pure (h11 style: feed bytes, take frames).

A frame is a u32 big-endian length followed by that many bytes. The decoder refuses a
length over its limit before buffering the body, so a peer cannot make us hold more than
`max_frame` + 4 bytes however it slices what it sends.
"""

from __future__ import annotations

import struct

_LEN = struct.Struct(">I")


class FrameError(Exception):
    """The other side broke the framing (a frame over the limit, or bytes after the end)."""


def encode(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


class FrameDecoder:
    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need: int | None = None

    def feed(self, data: bytes) -> None:
        """Add received bytes. Raises FrameError as soon as a length over the limit is seen."""
        self._buf += data
        self._check()

    def next_frame(self) -> bytes | None:
        """The next whole frame, or None until more bytes arrive."""
        if self._need is None:
            if len(self._buf) < _LEN.size:
                return None
            self._check()
            self._need = _LEN.unpack_from(self._buf)[0]
            del self._buf[:_LEN.size]
        if len(self._buf) < self._need:
            return None
        frame = bytes(self._buf[:self._need])
        del self._buf[:self._need]
        self._need = None
        self._check()
        return frame

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place for the stream to end)."""
        return self._need is None and not self._buf

    def _check(self) -> None:
        if self._need is None and len(self._buf) >= _LEN.size:
            length = _LEN.unpack_from(self._buf)[0]
            if length > self.max_frame:
                raise FrameError(f"frame of {length} bytes announced; the limit is {self.max_frame}")
