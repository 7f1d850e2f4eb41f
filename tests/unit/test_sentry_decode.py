"""Streamed inflation with a cap: output stops at the limit, whatever the input expands to."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Callable

import brotli
import pytest

from ingest_gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ingest_gateway.inflate import Decoder

Compress = Callable[[bytes], bytes]
ENCODINGS: list[tuple[str, Compress]] = [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli.compress),
]


def feed_all(decoder: Decoder, data: bytes, step: int = 7) -> bytes:
    out = b"".join(decoder.feed(data[i : i + step]) for i in range(0, len(data), step))
    decoder.finish()
    return out


@pytest.mark.parametrize(("encoding", "compress"), ENCODINGS)
def test_chunked_input_inflates_to_the_original(encoding: str, compress: Compress) -> None:
    original = b"hello sentry " * 300
    assert feed_all(Decoder(encoding, len(original)), compress(original)) == original


def test_concatenated_gzip_members_and_identity() -> None:
    assert feed_all(Decoder("gzip", 100), gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    assert feed_all(Decoder("identity", 4), b"abcd") == b"abcd"
    with pytest.raises(PayloadTooLarge):
        feed_all(Decoder("", 3), b"abcd")


@pytest.mark.parametrize(("encoding", "compress"), ENCODINGS)
def test_output_one_byte_over_the_limit_is_refused(encoding: str, compress: Compress) -> None:
    with pytest.raises(PayloadTooLarge):
        feed_all(Decoder(encoding, 999), compress(b"x" * 1000))


@pytest.mark.parametrize(("encoding", "compress"), ENCODINGS)
def test_a_bomb_never_inflates_in_memory(encoding: str, compress: Compress) -> None:
    bomb = compress(b"\0" * 50_000_000)  # ~50 kB that inflates to 50 MB
    decoder = Decoder(encoding, 64 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            decoder.feed(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    # zlib stops at the byte; brotli's output buffer may end one block past the limit
    assert decoder.total < 2 * 64 * 1024


@pytest.mark.parametrize(("encoding", "compress"), ENCODINGS)
def test_corrupt_or_truncated_streams_are_bad_requests(encoding: str, compress: Compress) -> None:
    with pytest.raises(BadRequest):
        feed_all(Decoder(encoding, 10_000), b"\xff\xfe not compressed at all")
    with pytest.raises(BadRequest):
        feed_all(Decoder(encoding, 10_000), compress(b"y" * 5000)[:-8])


def test_unknown_encodings_are_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        Decoder("zstd", 10)
