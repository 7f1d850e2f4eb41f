"""The envelope parser against Sentry's framing, and fuzzed: it fails only with EnvelopeError."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_gateway.sentry.envelope import EnvelopeError, parse_envelope

EVENT = b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"hi"}'


def test_items_with_length_may_hold_newlines_and_the_last_newline_is_optional() -> None:
    payload = b'{"a":\n1}'
    body = (
        b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"http://k@h/1"}\n'
        + b'{"type":"attachment","length":%d}\n' % len(payload)
        + payload
        + b"\n"
        + b'{"type":"event"}\n'
        + EVENT
    )
    envelope = parse_envelope(body)
    assert envelope.headers["dsn"] == "http://k@h/1"
    assert [(i.type, i.payload) for i in envelope.items] == [
        ("attachment", payload),
        ("event", EVENT),
    ]


def test_an_item_without_length_runs_to_the_next_newline_and_blank_lines_are_skipped() -> None:
    body = b'{}\n{"type":"session"}\n{"s":1}\n\n{"type":"client_report"}\n{"c":2}\n\n'
    envelope = parse_envelope(body)
    assert [(i.type, i.payload) for i in envelope.items] == [
        ("session", b'{"s":1}'),
        ("client_report", b'{"c":2}'),
    ]


def test_an_envelope_of_only_a_header_has_no_items() -> None:
    assert parse_envelope(b"{}").items == []
    assert parse_envelope(b"{}\n").items == []


def test_an_item_header_at_the_very_end_has_an_empty_payload() -> None:
    (item,) = parse_envelope(b'{}\n{"type":"event","length":0}').items
    assert item.payload == b""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"[]\n", "must be a JSON object"),
        (b"{nope\n", "envelope header is not valid JSON"),
        (b'{}\n{"length":2}\nab', "no 'type'"),
        (b'{}\n{"type":""}\n', "no 'type'"),
        (b'{}\n{"type":"event","length":10}\nabc', "declares 10 bytes but only 3 follow"),
        (b'{}\n{"type":"event","length":2}\nabc', "expected a newline after its payload"),
        (b'{}\n{"type":"event","length":-1}\n', "non-negative integer"),
        (b'{}\n{"type":"event","length":true}\nx', "non-negative integer"),
        (b'{}\n{"type":"event","length":"3"}\nabc', "non-negative integer"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_envelope_error(data: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        parse_envelope(data)


_headers = st.dictionaries(
    st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5), max_size=3
)


@settings(max_examples=300, deadline=None)
@given(
    _headers,
    st.lists(st.tuples(st.text(min_size=1, max_size=8), st.binary(max_size=50), st.booleans())),
    st.booleans(),
)
def test_well_formed_envelopes_round_trip(
    header: dict[str, object], items: list[tuple[str, bytes, bool]], trailing: bool
) -> None:
    """Items with a length keep any bytes; items without one, bytes without newlines."""
    body = orjson.dumps(header)
    expected = []
    for kind, payload, with_length in items:
        if not with_length:
            payload = payload.replace(b"\n", b"")
        item_header: dict[str, object] = {"type": kind}
        if with_length:
            item_header["length"] = len(payload)
        body += b"\n" + orjson.dumps(item_header) + b"\n" + payload
        expected.append((kind, payload))
    if trailing:
        body += b"\n"
    envelope = parse_envelope(body)
    assert envelope.headers == header
    assert [(i.type, i.payload) for i in envelope.items] == expected
