"""One attempt to notify one channel, whatever its type: build the payload, send, time it.

A channel that cannot be built (bad config, email without a relay) is a permanent failure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from alerting.channels import ChannelConfigError, digest_message, http_message
from alerting.channels.email import payload as email_payload
from alerting.delivery import Digest, Outcome
from alerting.incident import Incident
from alerting.send import Attempt, HttpSender, SmtpSettings, send_email
from pulseline.control.entities import Channel


@dataclass(frozen=True)
class Timed:
    attempt: Attempt
    latency_ms: float


class Dispatcher:
    def __init__(self, http: HttpSender, smtp: SmtpSettings | None, sender: str) -> None:
        self.http = http
        self.smtp = smtp
        self.sender = sender

    async def attempt(
        self, incident: Incident, channel: Channel, msg_id: str, now: datetime
    ) -> Timed:
        return await self._timed(self._one(incident, channel, msg_id, now))

    async def attempt_digest(
        self, digest: Digest, channel: Channel, msg_id: str, now: datetime
    ) -> Timed:
        return await self._timed(self._digest(digest, channel, msg_id, now))

    async def _timed(self, work: Awaitable[Attempt]) -> Timed:
        started = time.perf_counter()
        try:
            result = await work
        except ChannelConfigError as exc:
            result = Attempt(Outcome.FAILED, None, str(exc))
        return Timed(result, (time.perf_counter() - started) * 1000)

    async def _one(
        self, incident: Incident, channel: Channel, msg_id: str, now: datetime
    ) -> Attempt:
        if channel.type != "email":
            return await self.http.post(channel.id, http_message(incident, channel, msg_id, now))
        return await self._email(
            channel, msg_id, lambda to: email_payload.message(incident, self.sender, to)
        )

    async def _digest(
        self, digest: Digest, channel: Channel, msg_id: str, now: datetime
    ) -> Attempt:
        if channel.type != "email":
            return await self.http.post(channel.id, digest_message(digest, channel, msg_id, now))
        return await self._email(
            channel, msg_id, lambda to: email_payload.digest_message(digest, self.sender, to)
        )

    async def _email(
        self, channel: Channel, msg_id: str, build: Callable[[list[str]], EmailMessage]
    ) -> Attempt:
        if self.smtp is None:
            raise ChannelConfigError("no SMTP relay configured (PULSELINE_ALERTING_SMTP_HOST)")
        to = channel.config.get("to")
        if not isinstance(to, list) or not to:
            raise ChannelConfigError(f"channel {channel.id} needs a 'to' list in its config")
        message = build([str(r) for r in to])
        message["Message-ID"] = f"<{msg_id}@pulseline>"
        return await send_email(message, self.smtp)
