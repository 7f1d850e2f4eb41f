"""Rate and quota limits: the pure limiter with a fixed clock, then every door over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from ingest_gateway.app import create_app
from ingest_gateway.errors import QuotaExceeded, RateLimited
from ingest_gateway.limits import Allowance, Gate, Limiter, TokenBucket, next_month_start
from ingest_gateway.producer import ListProducer
from pulseline.control.entities import Project
from pulseline.control.store import ControlStore
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.settings import GatewaySettings
from tests.unit.test_pings_http import Control, World
from tests.unit.test_sentry_http import envelope, event_item, metric

T0 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
TEN_PER_S = Allowance(events_per_second=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def refusal(limiter: Limiter, allowance: Allowance, events: int, now: datetime) -> int | None:
    """Retry-After of a refused charge; None when it was admitted."""
    try:
        limiter.charge(1, allowance, events, now)
    except RateLimited as exc:
        return exc.retry_after_s
    return None


@pytest.mark.parametrize(
    ("charges", "expected"),
    [
        ([(0, 20)], [None]),
        ([(0, 21)], [None]),
        ([(0, 20), (0, 1)], [None, 1]),
        ([(0, 20), (0, 15)], [None, 2]),
        ([(0, 20), (1.0, 10)], [None, None]),
        ([(0, 20), (0.5, 10)], [None, 1]),
        ([(0, 20), (0.5, 5)], [None, None]),
        ([(0, 20), (100, 20), (100, 1)], [None, None, 1]),
        ([(0, 50), (0, 20)], [None, 5]),
        ([(0, 50), (3.0, 20)], [None, 2]),
        ([(0, 50), (5.0, 20)], [None, None]),
    ],
)
def test_the_bucket_refills_at_the_rate_and_says_when_a_request_would_fit(
    charges: list[tuple[float, int]], expected: list[int | None]
) -> None:
    """10 events/s and 2 s of burst: the bucket holds 20; a bigger batch leaves it in debt."""
    limiter = Limiter(burst_s=2.0)

    assert [refusal(limiter, TEN_PER_S, n, at(t)) for t, n in charges] == expected


def test_a_refused_request_takes_no_tokens() -> None:
    limiter = Limiter(burst_s=2.0)
    limiter.charge(1, TEN_PER_S, 20, at(0))

    assert refusal(limiter, TEN_PER_S, 15, at(0)) == 2
    assert refusal(limiter, TEN_PER_S, 10, at(1.0)) is None


def test_a_clock_that_steps_back_refills_nothing() -> None:
    bucket = TokenBucket(rate=10, capacity=20, now=100.0)
    assert bucket.take(20, 100.0) == 0
    assert bucket.take(10, 50.0) == pytest.approx(1.0)


def test_replicas_each_enforce_their_share_of_the_rate_and_quota() -> None:
    limiter = Limiter(burst_s=2.0, replicas=2)
    allowance = Allowance(events_per_second=10, monthly_quota=100)

    assert refusal(limiter, allowance, 10, at(0)) is None
    assert refusal(limiter, allowance, 1, at(0)) == 1
    for second in range(1, 9):
        limiter.charge(1, allowance, 5, at(second))
    with pytest.raises(QuotaExceeded):
        limiter.charge(1, allowance, 1, at(10))


def test_a_tier_change_applies_to_the_next_request() -> None:
    limiter = Limiter(burst_s=1.0)
    limiter.charge(1, Allowance(events_per_second=100), 100, at(0))

    assert refusal(limiter, Allowance(events_per_second=10), 10, at(0.5)) == 1


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2025, 3, 4, 5, 6, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
        (
            datetime(2025, 4, 1, 1, 0, tzinfo=UTC).astimezone(ZoneInfo("America/New_York")),
            datetime(2025, 5, 1, tzinfo=UTC),
        ),
    ],
)
def test_the_next_month_starts_at_midnight_utc_on_the_first(now: datetime, start: datetime) -> None:
    assert next_month_start(now) == start


def test_the_quota_refuses_until_the_month_ends_then_rolls_over() -> None:
    limiter = Limiter()
    quota = Allowance(monthly_quota=100)
    end_of_march = datetime(2025, 3, 31, 23, 59, 30, tzinfo=UTC)
    limiter.charge(1, quota, 90, datetime(2025, 3, 2, tzinfo=UTC))

    with pytest.raises(QuotaExceeded, match="monthly quota of 100") as refused:
        limiter.charge(1, quota, 11, end_of_march)
    assert refused.value.retry_after_s == 30
    assert refused.value.code == "quota_exceeded"
    limiter.charge(1, quota, 10, end_of_march)
    assert limiter.used(1, end_of_march) == 100
    limiter.charge(1, quota, 100, datetime(2025, 4, 1, tzinfo=UTC))
    assert limiter.used(1, datetime(2025, 4, 1, tzinfo=UTC)) == 100


def test_a_request_refused_by_the_rate_does_not_count_against_the_quota() -> None:
    limiter = Limiter(burst_s=1.0)
    allowance = Allowance(events_per_second=10, monthly_quota=1000)
    limiter.charge(1, allowance, 10, at(0))

    with pytest.raises(RateLimited):
        limiter.charge(1, allowance, 10, at(0))
    assert limiter.used(1, at(0)) == 10


def test_one_projects_burst_leaves_another_projects_bucket_untouched() -> None:
    limiter = Limiter(burst_s=1.0)
    limiter.charge(1, TEN_PER_S, 10, at(0))

    with pytest.raises(RateLimited):
        limiter.charge(1, TEN_PER_S, 1, at(0))
    limiter.charge(2, TEN_PER_S, 10, at(0))


def test_a_disabled_gate_admits_everything() -> None:
    gate = Gate(Limiter(), lambda _: Allowance(events_per_second=1), enabled=False)
    for _ in range(10):
        gate.check(1, 100, T0)


# --- over HTTP, with ListProducer and a static key ring (no control plane) ------------

KEY_A = new_key(Scope.INGEST)
KEY_B = new_key(Scope.INGEST)
SENTRY_AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={KEY_A}"}
PAGEVIEW = {"kind": "pageview", "attributes": {"url": "/"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def serve(settings: GatewaySettings, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    keyring = StaticKeyRing()
    keyring.add(KEY_A, ApiKey(1, Scope.INGEST))
    keyring.add(KEY_B, ApiKey(2, Scope.INGEST))
    app = create_app(settings, keyring, ListProducer(), **kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One event per second, two of burst, for projects the gateway has no tier for."""
    settings = GatewaySettings.from_env({"PULSELINE_DEFAULT_EVENTS_PER_SECOND": "1"})
    async for client in serve(settings):
        yield client


async def send(http: httpx.AsyncClient, key: str, events: int) -> httpx.Response:
    body = orjson.dumps([PAGEVIEW] * events)
    return await http.post("/v1/events", content=body, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.anyio
async def test_over_the_rate_v1_events_is_a_429_with_retry_after_and_the_limit_named(
    http: httpx.AsyncClient,
) -> None:
    assert (await send(http, KEY_A, 2)).status_code == 202

    response = await send(http, KEY_A, 2)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["error"] == "rate_limited"
    assert body["limit"] == "events_per_second"
    assert body["retry_after_s"] == 2
    assert "1 events/s" in body["detail"]
    metrics = (await http.get("/metrics")).text
    name = 'pulseline_gateway_events_rejected_total{kind="pageview",reason="rate_limited"}'
    assert metric(metrics, name) == 2


@pytest.mark.anyio
async def test_one_project_exhausting_its_bucket_does_not_refuse_another(
    http: httpx.AsyncClient,
) -> None:
    assert (await send(http, KEY_A, 2)).status_code == 202
    assert (await send(http, KEY_A, 1)).status_code == 429

    assert (await send(http, KEY_B, 2)).status_code == 202


@pytest.mark.anyio
async def test_the_sentry_envelope_endpoint_answers_a_rate_limit_as_relay_does(
    http: httpx.AsyncClient,
) -> None:
    assert (await send(http, KEY_A, 2)).status_code == 202

    response = await http.post(
        "/api/1/envelope/", content=envelope(event_item()), headers=SENTRY_AUTH
    )

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-sentry-rate-limits"] == "1::project"
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.anyio
async def test_over_the_monthly_quota_is_a_429_naming_the_quota() -> None:
    settings = GatewaySettings.from_env({"PULSELINE_DEFAULT_MONTHLY_QUOTA": "3"})
    async for http in serve(settings):
        assert (await send(http, KEY_A, 2)).status_code == 202
        response = await send(http, KEY_A, 2)
        assert response.status_code == 429
        body = response.json()
        assert (body["error"], body["limit"]) == ("quota_exceeded", "monthly_quota")
        assert int(response.headers["retry-after"]) == body["retry_after_s"] >= 1
        sentry = await http.post(
            "/api/1/envelope/", content=envelope(event_item(), event_item()), headers=SENTRY_AUTH
        )
        assert sentry.headers["x-sentry-rate-limits"].endswith("::project:quota_exceeded")


@pytest.mark.anyio
async def test_with_limits_disabled_nothing_is_refused() -> None:
    settings = GatewaySettings.from_env(
        {"PULSELINE_DEFAULT_EVENTS_PER_SECOND": "1", "PULSELINE_RATE_LIMITS_ENABLED": "false"}
    )
    async for http in serve(settings):
        for _ in range(3):
            assert (await send(http, KEY_A, 5)).status_code == 202


@pytest.mark.anyio
async def test_a_ping_over_its_projects_tier_rate_is_a_429_with_retry_after() -> None:
    control = Control()
    project = Project.model_validate(
        {"id": 1, "name": "shop", "slug": "shop", "ping_key": "p" * 20, "events_per_second": 1}
    )
    await control.put(project)
    settings = GatewaySettings.from_env({"PULSELINE_RATE_LIMIT_BURST_S": "1"})
    async for http in serve(settings, control=cast(ControlStore, control)):
        monitor = await World(http, control, ListProducer()).monitor(project)
        assert (await http.get(f"/ping/{monitor.id}")).status_code == 200

        response = await http.get(f"/ping/{monitor.id}")

        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert response.json()["limit"] == "events_per_second"
        assert (await send(http, KEY_A, 1)).status_code == 429
        assert (await send(http, KEY_B, 5)).status_code == 202
