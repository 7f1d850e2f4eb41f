"""Streamed decompression with a hard cap on the output: a bomb stops at the limit.

``Inflater(encoding, limit).feed(chunk)`` returns what the chunk inflates to and raises
``PayloadTooLarge`` as soon as the total would pass ``limit``; no call ever holds more
than ``limit`` bytes of output. Encodings: identity, gzip, deflate (zlib or raw), br.
"""

from __future__ import annotations

import zlib

import brotli

from ingest_gateway.errors import BadRequest, PayloadTooLarge

ENCODINGS = frozenset({"identity", "gzip", "x-gzip", "deflate", "br"})


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "body_too_large", f"the body inflates to more than the limit of {limit} bytes"
    )


def _corrupt(encoding: str) -> BadRequest:
    return BadRequest("bad_encoding", f"the body is not valid {encoding} data")


class Inflater:
    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.total = 0
        self._started = False
        self._zlib: zlib._Decompress | None = None
        self._br: brotli.Decompressor | None = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header
        elif encoding == "br":
            self._br = brotli.Decompressor()

    def _count(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.total > self.limit:
            raise _too_large(self.limit)
        return out

    def feed(self, chunk: bytes) -> bytes:
        if self._zlib is not None:
            return self._feed_zlib(chunk)
        if self._br is not None:
            return self._feed_br(chunk)
        return self._count(chunk)

    def _feed_zlib(self, chunk: bytes) -> bytes:
        assert self._zlib is not None
        parts: list[bytes] = []
        data = chunk
        while data:
            room = self.limit - self.total + 1
            try:
                out = self._zlib.decompress(data, room)
            except zlib.error:
                if self.encoding == "deflate" and not self._started:
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                    self._started = True
                    return self._feed_zlib(chunk)
                raise _corrupt(self.encoding) from None
            self._started = True
            parts.append(self._count(out))
            data = self._zlib.unconsumed_tail
        return b"".join(parts)

    def _feed_br(self, chunk: bytes) -> bytes:
        assert self._br is not None
        parts: list[bytes] = []
        data = chunk
        while True:
            room = self.limit - self.total + 1
            try:
                out = self._br.process(data, output_buffer_limit=room)
            except brotli.error:
                raise _corrupt("br") from None
            parts.append(self._count(out))
            data = b""
            if self._br.can_accept_more_data():
                return b"".join(parts)

    def finish(self) -> bytes:
        if self._zlib is not None:
            tail = self._count(self._zlib.flush())
            if not self._zlib.eof and self._started:
                raise _corrupt(self.encoding)
            return tail
        if self._br is not None and not self._br.is_finished():
            raise _corrupt("br")
        return b""
