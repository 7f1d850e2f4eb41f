from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from alerting.channels import HttpMessage
from alerting.delivery import Outcome
from alerting.send import HttpSender

SECRET = "whsec_c2VjcmV0"


async def resolver(host: str, port: int) -> list[str]:
    return {"hooks.example": ["93.184.216.34"], "evil.example": ["10.0.0.7"]}[host]


def message(url: str) -> HttpMessage:
    return HttpMessage(url=url, body=b"{}", msg_id="msg_1", secrets=(SECRET,))


def send(url: str, handler: httpx.MockTransport) -> tuple[Outcome, int | None]:
    async def go() -> tuple[Outcome, int | None]:
        sender = HttpSender(resolver=resolver, clock=lambda: 1_700_000_000, transport=handler)
        try:
            attempt = await sender.post("c1", message(url))
        finally:
            await sender.aclose()
        return attempt.outcome, attempt.status

    return asyncio.run(go())


def test_it_connects_to_the_checked_address_keeping_host_and_sni() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    assert send("https://hooks.example:8443/in?x=1", httpx.MockTransport(handler)) == (
        Outcome.OK,
        204,
    )
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34:8443/in?x=1"
    assert request.headers["host"] == "hooks.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.example"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["webhook-timestamp"] == "1700000000"
    assert request.headers["webhook-signature"].startswith("v1,")


def test_a_name_resolving_to_a_private_address_is_never_contacted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    assert send("http://evil.example/", httpx.MockTransport(handler)) == (Outcome.FAILED, None)
    assert seen == []


@pytest.mark.parametrize("url", ["ftp://hooks.example/", "file:///etc/passwd"])
def test_only_http_urls_are_sent(url: str) -> None:
    assert send(url, httpx.MockTransport(lambda r: httpx.Response(200))) == (Outcome.FAILED, None)


def test_a_connection_error_is_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert send("https://hooks.example/", httpx.MockTransport(handler)) == (Outcome.RETRY, None)


def test_at_most_the_cap_of_requests_per_channel_are_in_flight() -> None:
    in_flight = {"c1": 0, "c2": 0}
    peak = {"c1": 0, "c2": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        channel = request.url.path.strip("/")
        in_flight[channel] += 1
        peak[channel] = max(peak[channel], in_flight[channel])
        await asyncio.sleep(0.01)
        in_flight[channel] -= 1
        return httpx.Response(200)

    async def go() -> None:
        sender = HttpSender(
            resolver=resolver, per_channel=2, transport=httpx.MockTransport(handler)
        )
        try:
            await asyncio.gather(
                *(
                    sender.post(ch, message(f"https://hooks.example/{ch}"))
                    for ch in ["c1", "c2"] * 6
                )
            )
        finally:
            await sender.aclose()

    asyncio.run(go())
    assert peak == {"c1": 2, "c2": 2}


def test_retries_stop_at_the_first_non_retry_outcome() -> None:
    statuses = iter([503, 429, 200])
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def go() -> list[Outcome]:
        sender = HttpSender(
            resolver=resolver,
            transport=httpx.MockTransport(lambda r: httpx.Response(next(statuses))),
        )
        try:
            attempts = await sender.deliver(
                "c1",
                message("https://hooks.example/"),
                rng=random.Random(1),
                schedule=(5, 30, 120),
                sleep=sleep,
            )
        finally:
            await sender.aclose()
        return [a.outcome for a in attempts]

    assert asyncio.run(go()) == [Outcome.RETRY, Outcome.RETRY, Outcome.OK]
    assert len(delays) == 2 and 0 <= delays[0] <= 5 and 0 <= delays[1] <= 30
