"""Who sent a request: the client IP behind trusted proxies, the user agent, and where
both end up (the v1 envelope, then the events row)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import httpx
import orjson
import pytest

from ingest_gateway.app import create_app
from ingest_gateway.client import (
    MAX_USER_AGENT_CHARS,
    ClientInfo,
    TrustedProxies,
    client_ip,
    parse_address,
    user_agent,
)
from ingest_gateway.producer import ListProducer
from ingest_gateway.stamp import Stamper
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.schemas import Event
from pulseline.settings import ConfigError, GatewaySettings
from storage.rows import EVENTS, Source, decode

PROXIES = TrustedProxies.parse("10.0.0.0/8, 2001:db8:ffff::/48")
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", [], "203.0.113.9"),
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1, 10.1.1.1, 10.2.2.2"], "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.1.1"], "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6", "198.51.100.1, 10.1.1.1"], "198.51.100.1"),
        ("10.0.0.1", ["10.3.3.3, 10.1.1.1"], "10.3.3.3"),
        ("10.0.0.1", ["not-an-ip"], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1, garbage, 10.1.1.1"], "10.1.1.1"),
        ("10.0.0.1", [" , ,198.51.100.1 "], "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("2001:db8:ffff::1", ["2001:DB8:0:0::7"], "2001:db8::7"),
        ("2001:db8:ffff::1", ["[2001:db8::7]:443, 2001:db8:ffff::2"], "2001:db8::7"),
        ("2001:db8::9", ["198.51.100.1"], "2001:db8::9"),
        ("::ffff:10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("testclient", ["198.51.100.1"], None),
        (None, ["198.51.100.1"], None),
    ],
)
def test_the_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    peer: str | None, forwarded: list[str], expected: str | None
) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected


def test_with_no_trusted_proxies_a_forged_forwarded_for_changes_nothing() -> None:
    assert client_ip("10.0.0.1", ["198.51.100.1"], TrustedProxies()) == "10.0.0.1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4:80 ", "1.2.3.4"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("1.2.3", None),
        ("", None),
        ("[::1", "::1"),
    ],
)
def test_addresses_are_read_as_proxies_write_them(text: str, expected: str | None) -> None:
    found = parse_address(text)
    assert (None if found is None else str(found)) == expected


def test_a_bad_trusted_proxy_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8'"):
        TrustedProxies.parse("10.0.0.0/8,10.0.0.300/8")


def test_a_bad_trusted_proxies_setting_fails_at_boot_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="PULSELINE_TRUSTED_PROXIES"):
        GatewaySettings.from_env({"PULSELINE_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (" curl/8.5 ", "curl/8.5"),
        ("x" * (MAX_USER_AGENT_CHARS + 50), "x" * MAX_USER_AGENT_CHARS),
    ],
)
def test_the_user_agent_is_trimmed_and_bounded(raw: str | None, expected: str | None) -> None:
    assert user_agent(raw) == expected


def test_the_stamped_client_reaches_the_envelope_and_the_events_row() -> None:
    client = ClientInfo("198.51.100.1", "Mozilla/5.0")
    raw = {"kind": "pageview", "attributes": {"url": "/"}}
    out = Stamper("p.", 1 << 20).stamp([raw], 7, NOW, new_id=lambda: UUID(int=1), client=client)
    ((_, _, value),) = out.records

    event = Event.model_validate_json(value)
    assert (event.client_ip, event.user_agent) == ("198.51.100.1", "Mozilla/5.0")
    row = dict(zip(EVENTS.columns, decode(EVENTS, value, Source("t", 0, 0)), strict=True))
    assert (row["client_ip"], row["user_agent"]) == ("198.51.100.1", "Mozilla/5.0")


def test_an_event_stamped_without_a_client_stores_empty_strings() -> None:
    out = Stamper("p.", 1 << 20).stamp([{"kind": "pageview", "attributes": {"url": "/"}}], 7, NOW)
    ((_, _, value),) = out.records

    assert orjson.loads(value)["client_ip"] is None
    row = dict(zip(EVENTS.columns, decode(EVENTS, value, Source("t", 0, 0)), strict=True))
    assert (row["client_ip"], row["user_agent"]) == ("", "")


KEY = new_key(Scope.INGEST)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def behind_proxy() -> AsyncIterator[tuple[httpx.AsyncClient, ListProducer]]:
    settings = GatewaySettings.from_env({"PULSELINE_TRUSTED_PROXIES": "10.0.0.0/8"})
    keyring = StaticKeyRing()
    keyring.add(KEY, ApiKey(42, Scope.INGEST))
    producer = ListProducer()
    app = create_app(settings, keyring, producer)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c, producer


@pytest.mark.anyio
async def test_the_gateway_stamps_the_forwarded_client_and_its_user_agent(
    behind_proxy: tuple[httpx.AsyncClient, ListProducer],
) -> None:
    http, producer = behind_proxy
    headers = {
        "Authorization": f"Bearer {KEY}",
        "X-Forwarded-For": "198.51.100.1, 10.9.9.9",
        "User-Agent": "shop-app/2.1",
    }
    body = orjson.dumps([{"kind": "pageview", "attributes": {"url": "/"}}])

    response = await http.post("/v1/events", content=body, headers=headers)

    assert response.status_code == 202, response.text
    ((_, _, value),) = producer.records
    event = Event.model_validate_json(value)
    assert (event.client_ip, event.user_agent) == ("198.51.100.1", "shop-app/2.1")
