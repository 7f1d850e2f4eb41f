"""One attempt to notify one channel, whatever its type: build the payload, send, time it.

A channel that cannot be built (bad config, email without a relay) is a permanent failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from alerting.channels import ChannelConfigError, http_message
from alerting.channels.email import payload as email_payload
from alerting.delivery import Outcome
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
        started = time.perf_counter()
        try:
            result = await self._attempt(incident, channel, msg_id, now)
        except ChannelConfigError as exc:
            result = Attempt(Outcome.FAILED, None, str(exc))
        return Timed(result, (time.perf_counter() - started) * 1000)

    async def _attempt(
        self, incident: Incident, channel: Channel, msg_id: str, now: datetime
    ) -> Attempt:
        if channel.type != "email":
            return await self.http.post(channel.id, http_message(incident, channel, msg_id, now))
        if self.smtp is None:
            raise ChannelConfigError("no SMTP relay configured (PULSELINE_ALERTING_SMTP_HOST)")
        to = channel.config.get("to")
        if not isinstance(to, list) or not to:
            raise ChannelConfigError(f"channel {channel.id} needs a 'to' list in its config")
        message = email_payload.message(incident, self.sender, [str(r) for r in to])
        message["Message-ID"] = f"<{msg_id}@pulseline>"
        return await send_email(message, self.smtp)
