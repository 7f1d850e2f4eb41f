"""Inflate a request body chunk by chunk with a hard cap on the output.

``Decoder(encoding, limit).feed(chunk)`` returns what the chunk inflates to and raises
``PayloadTooLarge`` as soon as the total would pass ``limit``: no call produces more than
``limit + 1`` bytes (brotli: up to one output block more), so a small bomb never
inflates in memory. ``finish()`` checks the
stream ended. Encodings: identity, gzip (several members too), deflate (zlib or raw), br.
"""

from __future__ import annotations

import zlib
from typing import Any

import brotli

from ingest_gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

ENCODINGS = frozenset({"identity", "gzip", "x-gzip", "deflate", "br"})


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "body_too_large", f"the body is (or inflates to) more than the limit of {limit} bytes"
    )


def _corrupt(encoding: str) -> BadRequest:
    return BadRequest("bad_encoding", f"the body is not valid {encoding} data")


class Decoder:
    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower() or "identity"
        if encoding not in ENCODINGS:
            raise UnsupportedMediaType(
                "unsupported_encoding",
                f"Content-Encoding {encoding!r} is not accepted; use gzip, deflate or br",
            )
        self.encoding = "gzip" if encoding == "x-gzip" else encoding
        self.limit = limit
        self.total = 0
        self._started = False
        self._zlib: Any = None
        self._brotli: Any = brotli.Decompressor() if self.encoding == "br" else None
        if self.encoding == "gzip":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        if self.encoding == "identity":
            return self._count(chunk)
        if self.encoding == "br":
            return self._feed_brotli(chunk)
        if self._zlib is None:  # deflate: zlib-wrapped per the RFC, raw from some clients
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(chunk) else -15)
        return self._feed_zlib(chunk)

    def finish(self) -> None:
        """Raise when the compressed stream stopped before its end."""
        if self.encoding == "identity" or not self._started:
            return
        done = self._brotli.is_finished() if self.encoding == "br" else self._zlib.eof
        if not done:
            raise _corrupt(self.encoding)

    def _count(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.total > self.limit:
            raise _too_large(self.limit)
        return out

    def _room(self) -> int:
        return self.limit - self.total + 1  # one byte more than allowed proves the excess

    def _feed_zlib(self, chunk: bytes) -> bytes:
        self._started = True
        parts: list[bytes] = []
        data = chunk
        try:
            while data:
                if self._zlib.eof:
                    if self.encoding != "gzip" or not data.strip(b"\x00"):
                        break  # bytes after the stream (padding): ignored
                    self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next member
                parts.append(self._count(self._zlib.decompress(data, self._room())))
                data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
        except zlib.error:
            raise _corrupt(self.encoding) from None
        return b"".join(parts)

    def _feed_brotli(self, chunk: bytes) -> bytes:
        self._started = True
        parts: list[bytes] = []
        try:
            if self._brotli.is_finished():
                return b""
            process = self._brotli.process
            parts.append(self._count(process(chunk, output_buffer_limit=self._room())))
            while not self._brotli.can_accept_more_data():
                parts.append(self._count(process(b"", output_buffer_limit=self._room())))
        except brotli.error:
            raise _corrupt("br") from None
        return b"".join(parts)


def _zlib_header(chunk: bytes) -> bool:
    """Whether the stream starts with a zlib header (RFC 1950: CM=8 and the FCHECK sum)."""
    return len(chunk) >= 2 and chunk[0] & 0x0F == 8 and ((chunk[0] << 8) | chunk[1]) % 31 == 0
