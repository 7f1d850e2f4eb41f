"""Batches to /v1/events: the ingest key, retries after Retry-After, the same event ids."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pulseline.collectors.sender import IngestSender, Unauthorized

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def events(n: int) -> list[dict[str, Any]]:
    return [
        {"kind": "metric", "event_id": f"id-{i}", "attributes": {"name": "m", "value": i}}
        for i in range(n)
    ]


class Gateway:
    """Answers from a script of (status, headers, body); records every request."""

    def __init__(self, *answers: tuple[int, dict[str, str], Any]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        status, headers, answer = self.answers.pop(0) if self.answers else (202, {}, None)
        if answer is None:
            answer = {"accepted": len(body), "event_ids": [e["event_id"] for e in body]}
        return httpx.Response(status, headers=headers, json=answer)

    def bodies(self) -> list[list[str]]:
        return [[e["event_id"] for e in json.loads(r.content)] for r in self.requests]


def sender(
    gateway: Callable[[httpx.Request], httpx.Response], sleeps: list[float], **over: Any
) -> IngestSender:
    return IngestSender(
        "http://gw.test:8000/",
        "pl_ingest_secret",
        transport=httpx.MockTransport(gateway),
        sleep=sleeps.append,
        jitter=lambda: 1.0,
        clock=lambda: NOW,
        **over,
    )


def test_events_go_in_batches_with_the_ingest_key() -> None:
    gateway = Gateway()
    sleeps: list[float] = []
    report = sender(gateway, sleeps, batch_size=2).send(events(5))
    assert report.accepted == 5 and report.ok and not report.rejected
    assert gateway.bodies() == [["id-0", "id-1"], ["id-2", "id-3"], ["id-4"]]
    first = gateway.requests[0]
    assert str(first.url) == "http://gw.test:8000/v1/events"
    assert first.headers["authorization"] == "Bearer pl_ingest_secret"
    assert first.headers["content-type"] == "application/json"
    assert sleeps == []


def test_a_503_and_a_429_are_retried_after_retry_after_with_the_same_ids() -> None:
    gateway = Gateway(
        (503, {"Retry-After": "5"}, {"error": "kafka_unavailable", "detail": "no ack"}),
        (429, {"Retry-After": "2"}, {"error": "rate_limited", "detail": "slow down"}),
    )
    sleeps: list[float] = []
    report = sender(gateway, sleeps).send(events(3))
    assert report.accepted == 3 and report.ok
    assert sleeps == [5.0, 2.0]
    assert gateway.bodies() == [["id-0", "id-1", "id-2"]] * 3


def test_without_retry_after_the_wait_backs_off() -> None:
    gateway = Gateway((502, {}, {}), (500, {}, {}), (504, {}, {}))
    sleeps: list[float] = []
    assert sender(gateway, sleeps).send(events(1)).ok
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_network_error_is_retried() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(202, json={"accepted": 1, "event_ids": ["id-0"]})

    sleeps: list[float] = []
    assert sender(flaky, sleeps).send(events(1)).accepted == 1
    assert sleeps == [0.5]


def test_after_the_last_attempt_the_batch_is_dropped_and_the_next_still_sent() -> None:
    gateway = Gateway(*[(503, {"Retry-After": "1"}, {"detail": "down"})] * 3)
    sleeps: list[float] = []
    report = sender(gateway, sleeps, max_attempts=3, batch_size=2).send(events(3))
    assert report.dropped == 2 and report.accepted == 1 and not report.ok
    assert report.problems == ["gateway answered 503: down; dropped 2 events"]
    assert sleeps == [1.0, 1.0]


def test_a_wait_longer_than_allowed_drops_the_batch_at_once() -> None:
    gateway = Gateway((429, {"Retry-After": "86400"}, {"detail": "quota"}))
    sleeps: list[float] = []
    report = sender(gateway, sleeps, max_wait_s=60).send(events(2))
    assert report.dropped == 2 and sleeps == []
    assert "asks to wait 86400s" in report.problems[0]


def test_a_client_error_is_not_retried() -> None:
    gateway = Gateway((413, {}, {"error": "too_many_events", "detail": "too many"}))
    sleeps: list[float] = []
    report = sender(gateway, sleeps).send(events(2))
    assert report.dropped == 2 and len(gateway.requests) == 1 and sleeps == []
    assert report.problems == ["gateway answered 413: too many; dropped 2 events"]


def test_rejected_events_are_reported() -> None:
    partial = {"accepted": 1, "event_ids": ["id-0"], "rejected": [{"index": 1, "reason": "bad"}]}
    none_valid = {"accepted": 0, "event_ids": [], "rejected": [{"index": 0, "reason": "worse"}]}
    gateway = Gateway((202, {}, partial), (400, {}, none_valid))
    sleeps: list[float] = []
    report = sender(gateway, sleeps, batch_size=2).send(events(3))
    assert report.accepted == 1 and report.rejected == ["bad", "worse"] and report.ok


def test_an_unknown_key_stops_the_sender() -> None:
    gateway = Gateway((401, {}, {"error": "unknown_key", "detail": "the API key is not known"}))
    with pytest.raises(Unauthorized, match="not known"):
        sender(gateway, []).send(events(1))
