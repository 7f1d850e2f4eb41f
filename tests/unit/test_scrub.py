"""PII scrubbing at the gateway: secrets by key name, card numbers by Luhn, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest_gateway.scrub import FILTERED, MAX_DEPTH, Scrubber, luhn_valid, scrub_text
from ingest_gateway.sentry.mapping import error_event
from ingest_gateway.stamp import Stamper

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
VISA = "4111111111111111"
F = FILTERED


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"password": "hunter2"}, {"password": F}),
        ({"user_PASSWORD": "x", "Passwd": 1}, {"user_PASSWORD": F, "Passwd": F}),
        ({"client_secret": "s", "csrf_token": "t"}, {"client_secret": F, "csrf_token": F}),
        ({"api_key": "k", "X-ApiKey": "k"}, {"api_key": F, "X-ApiKey": F}),
        ({"Authorization": "Bearer abc"}, {"Authorization": F}),
        ({"cookies": {"session": "abc"}}, {"cookies": F}),
        ({"credit_card": None, "card_number": 42}, {"credit_card": F, "card_number": F}),
        ({"properties": {"a": [{"token": "t"}]}}, {"properties": {"a": [{"token": F}]}}),
        ({"list": [[{"secret": "s"}]]}, {"list": [[{"secret": F}]]}),
        ({"name": "signup", "url": "/pay", "n": 1}, {"name": "signup", "url": "/pay", "n": 1}),
        ({"author": "a", "key": "k", "pass": "p"}, {"author": "a", "key": "k", "pass": "p"}),
    ],
)
def test_values_under_sensitive_key_names_are_filtered(
    attributes: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert Scrubber()(attributes) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VISA, F),
        ("paid with 4111 1111 1111 1111 today", f"paid with {F} today"),
        ("card 5500-0000-0000-0004.", f"card {F}."),
        ("amex 378282246310005", f"amex {F}"),
        ("4111111111111112", "4111111111111112"),
        ("order 1234567890123", "order 1234567890123"),
        ("id 41111111111111110000000", "id 41111111111111110000000"),
        ("short 4111", "short 4111"),
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
        # 928598519404687 is Luhn-valid, but it is the inside of a UUID, not a card.
        ("81a92859-8519-4046-87f0-03bbee1d007a", "81a92859-8519-4046-87f0-03bbee1d007a"),
        ("ref_4111111111111111", "ref_4111111111111111"),
        ("", ""),
    ],
)
def test_card_like_numbers_are_filtered_only_when_luhn_valid(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    ("digits", "valid"),
    [(VISA, True), ("79927398713", True), ("79927398710", False), ("0", True)],
)
def test_luhn_matches_the_textbook_examples(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_a_card_number_in_a_nested_list_is_filtered() -> None:
    attributes = {"breadcrumbs": [{"message": f"charged {VISA}", "data": {"n": [VISA, "ok"]}}]}

    out = Scrubber()(attributes)

    assert out == {"breadcrumbs": [{"message": f"charged {F}", "data": {"n": [F, "ok"]}}]}


def test_the_input_is_not_mutated_and_clean_input_is_returned_as_is() -> None:
    dirty = {"a": {"password": "p"}, "b": [1]}
    clean = {"a": {"b": ["c", 1]}}

    Scrubber()(dirty)

    assert dirty == {"a": {"password": "p"}, "b": [1]}
    assert Scrubber()(clean) is clean


def test_containers_deeper_than_the_bound_are_filtered_whole() -> None:
    deep: dict[str, Any] = {"leaf": "x"}
    for _ in range(MAX_DEPTH + 2):
        deep = {"d": deep}

    out = Scrubber()(deep)

    for _ in range(MAX_DEPTH):
        out = out["d"]
    assert out == {"d": F}


def test_extra_fields_are_added_and_disabling_turns_it_off() -> None:
    attributes = {"ssn": "123-45-6789", "password": "p"}

    assert Scrubber.from_settings(True, " ssn , ")(attributes) == {"ssn": F, "password": F}
    assert Scrubber.from_settings(False, "ssn")(attributes) is attributes


def test_a_sentry_error_events_authorization_header_is_filtered_in_both_shapes() -> None:
    sentry = {
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
        "message": "boom",
        "request": {
            "url": "https://shop.example/pay",
            "headers": [["Authorization", "Bearer s3cr3t"], ["Accept", "text/html"]],
            "cookies": "session=abc",
            "data": {"card": VISA, "password": "hunter2"},
        },
        "contexts": {"app": {"headers": {"authorization": "Basic eA=="}}},
    }
    raw = error_event(sentry)

    ((_, _, value),) = Stamper("p.", 1 << 20).stamp([raw], 7, NOW).records

    attributes = orjson.loads(value)["attributes"]
    assert attributes["request"] == {
        "url": "https://shop.example/pay",
        "headers": [["Authorization", F], ["Accept", "text/html"]],
        "cookies": F,
        "data": {"card": F, "password": F},
    }
    assert attributes["contexts"]["app"]["headers"] == {"authorization": F}
    assert b"s3cr3t" not in value and b"hunter2" not in value and VISA.encode() not in value


def test_the_stamper_leaves_top_level_fields_alone() -> None:
    raw = {"kind": "event", "distinct_id": VISA, "attributes": {"name": "x", "token": "t"}}

    ((_, _, value),) = Stamper("p.", 1 << 20).stamp([raw], 7, NOW).records

    envelope = orjson.loads(value)
    assert envelope["distinct_id"] == VISA
    assert envelope["attributes"] == {"name": "x", "token": F}
