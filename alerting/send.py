"""Thin async senders: HTTP POST with SSRF pinning, bounded retries, and SMTP.

The SSRF check runs at send time and the connection goes to the checked address itself (the
URL's host is swapped for the IP; ``Host`` and TLS SNI keep the name, so certificates are still
verified against it), which defeats DNS rebinding. Keep-alive is off so a TLS connection made
for one name is never reused for another name on the same IP. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import random
import smtplib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import httpx

from alerting import signing
from alerting.channels import HttpMessage
from alerting.delivery import SCHEDULE_S, Outcome, classify, retry_delay
from alerting.ssrf import BlockedDestination, Resolver, check_host, system_resolver


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    status: int | None
    detail: str


class HttpSender:
    """POSTs alert messages; at most ``per_channel`` in flight per channel id.

    ``transport`` is for tests (an ``httpx.MockTransport``); ``clock`` stamps signatures.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        per_channel: int = 4,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._per_channel = per_channel
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._allow_private = allow_private
        self._resolver = resolver
        self._clock = clock

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, channel_id: str, message: HttpMessage) -> Attempt:
        slot = self._slots.setdefault(channel_id, asyncio.Semaphore(self._per_channel))
        async with slot:
            return await self._post(message)

    async def _post(self, message: HttpMessage) -> Attempt:
        url = httpx.URL(message.url)
        if url.scheme not in ("http", "https") or not url.host:
            return Attempt(Outcome.FAILED, None, f"not an http(s) URL: {message.url}")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            ip = await check_host(
                url.host, port, allow_private=self._allow_private, resolver=self._resolver
            )
        except BlockedDestination as blocked:
            return Attempt(Outcome.FAILED, None, str(blocked))
        stamp = int(self._clock())
        headers = {
            **message.headers,
            "host": url.netloc.decode("ascii"),
            **signing.headers(message.secrets, message.msg_id, stamp, message.body),
        }
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        try:
            response = await self._client.post(
                url.copy_with(host=str(ip)),
                content=message.body,
                headers=headers,
                extensions=extensions,
            )
        except httpx.TimeoutException:
            return Attempt(Outcome.RETRY, None, "timeout")
        except httpx.TransportError as exc:
            return Attempt(Outcome.RETRY, None, f"transport error: {type(exc).__name__}")
        return Attempt(classify(response.status_code), response.status_code, response.reason_phrase)

    async def deliver(
        self,
        channel_id: str,
        message: HttpMessage,
        *,
        rng: random.Random,
        schedule: Sequence[float] = SCHEDULE_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> list[Attempt]:
        """Attempt until an outcome other than ``retry`` or the schedule runs out; every
        attempt carries the same ``webhook-id``."""
        attempts: list[Attempt] = []
        while True:
            attempt = await self.post(channel_id, message)
            attempts.append(attempt)
            delay = retry_delay(len(attempts), rng, schedule)
            if attempt.outcome is not Outcome.RETRY or delay is None:
                return attempts
            await sleep(delay)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout_s: float = 10.0


def _send_email_blocking(message: EmailMessage, smtp: SmtpSettings) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username is not None:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


async def send_email(message: EmailMessage, smtp: SmtpSettings) -> Attempt:
    """Send through the operator's SMTP relay; 4xx replies and network errors are retryable."""
    try:
        await asyncio.to_thread(_send_email_blocking, message, smtp)
    except smtplib.SMTPResponseException as exc:
        outcome = Outcome.RETRY if 400 <= exc.smtp_code < 500 else Outcome.FAILED
        return Attempt(outcome, exc.smtp_code, str(exc.smtp_error))
    except smtplib.SMTPRecipientsRefused as exc:
        return Attempt(Outcome.FAILED, None, f"recipients refused: {list(exc.recipients)}")
    except (OSError, smtplib.SMTPException) as exc:
        return Attempt(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")
    return Attempt(Outcome.OK, 250, "sent")
