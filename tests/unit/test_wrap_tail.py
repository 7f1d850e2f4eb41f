"""The bounded tail of a job's output and the redacted body built from it (pure)."""

from __future__ import annotations

import pytest

from pulseline.producers.redact import MASK, Redactor
from pulseline.producers.tail import MIN_MARGIN_BYTES, Tail, body, last_bytes, margin_for


@pytest.mark.parametrize(
    ("capacity", "chunks", "kept", "total"),
    [
        (10, [], b"", 0),
        (10, [b"abc"], b"abc", 3),
        (10, [b"0123456789"], b"0123456789", 10),
        (10, [b"0123456789", b"ab"], b"23456789ab", 12),
        (4, [b"a"] * 50, b"aaaa", 50),
        (4, [b"abcdefghijklmnop"], b"mnop", 16),
        (3, [b"ab", b"cd", b"ef", b"g"], b"efg", 7),
        (0, [b"abc"], b"", 3),
    ],
)
def test_tail_keeps_the_last_bytes_and_counts_all(
    capacity: int, chunks: list[bytes], kept: bytes, total: int
) -> None:
    tail = Tail(capacity)
    for chunk in chunks:
        tail.feed(chunk)
    assert tail.kept() == kept
    assert tail.total == total
    assert tail.dropped == total - len(kept)


def test_tail_memory_stays_bounded() -> None:
    tail = Tail(100)
    for _ in range(10_000):
        tail.feed(b"x" * 37)
    assert len(tail._buffer) <= 200
    assert tail.kept() == b"x" * 100


@pytest.mark.parametrize(
    ("data", "limit", "expected"),
    [
        (b"hello", 10, b"hello"),
        (b"hello", 5, b"hello"),
        (b"hello", 3, b"llo"),
        (b"hello", 0, b""),
        (b"", 3, b""),
        ("aé".encode(), 1, b""),  # the cut falls inside é: skip its continuation byte
        ("xé€".encode(), 4, "€".encode()),
        ("x€".encode(), 2, b""),
    ],
)
def test_last_bytes_cuts_on_a_character_boundary(data: bytes, limit: int, expected: bytes) -> None:
    assert last_bytes(data, limit) == expected


def test_margin_covers_the_longest_secret() -> None:
    assert margin_for(Redactor()) == MIN_MARGIN_BYTES
    assert margin_for(Redactor(("s" * 5000,))) == 5000


def test_body_redacts_and_keeps_the_end() -> None:
    redactor = Redactor(("abc123",))
    tail = Tail(1000)
    tail.feed(b"start\nkey abc123\nend\n")
    assert body(tail, redactor, 1000, 100) == f"start\nkey {MASK}\nend\n".encode()
    assert body(tail, redactor, 4, 100) == b"end\n"


def test_body_drops_a_partial_first_line_when_output_was_dropped() -> None:
    # The ring lost the start of "abc123": what is left of it ("c123") cannot be recognised,
    # so the first (partial) line goes.
    redactor = Redactor(("abc123",))
    margin = 10
    tail = Tail(19 + margin)
    tail.feed(b"x" * 100 + b"abc123 l1\nline 2\nline 3 abc123\n")
    assert tail.kept().startswith(b"c123 l1\n")
    sent = body(tail, redactor, 100, margin)
    assert sent == f"line 2\nline 3 {MASK}\n".encode()
    assert b"c123" not in sent


def test_body_drops_the_whole_margin_when_it_has_no_newline() -> None:
    tail = Tail(10 + 5)
    tail.feed(b"SECRET" * 10)
    sent = body(tail, Redactor(), 10, 5)
    assert sent == tail.kept()[5:]
    assert len(sent) == 10


def test_body_is_cut_after_redaction_so_no_secret_is_cut_in_half() -> None:
    redactor = Redactor(("supersecretvalue",))
    tail = Tail(1000)
    tail.feed(b"..supersecretvalue!")
    sent = body(tail, redactor, 8, 100)
    assert sent == f"{MASK}!".encode()[-8:]
    assert b"value" not in sent
