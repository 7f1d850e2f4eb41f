"""Each channel type is one folder with a pure ``payload.py``; ``http_message`` picks one,
``digest_message`` its digest form (pagerduty has none: it takes one event per incident).

Channel config: ``url`` for webhook, slack, discord and teams; pagerduty takes its routing key
from the channel secret; email takes ``to`` (a list) and is built by ``email.payload``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerting.channels.discord import payload as discord
from alerting.channels.pagerduty import payload as pagerduty
from alerting.channels.slack import payload as slack
from alerting.channels.teams import payload as teams
from alerting.channels.webhook import payload as webhook
from alerting.delivery import Digest
from alerting.incident import Incident
from alerting.signing import secrets_of
from pulseline.control.entities import Channel


@dataclass(frozen=True)
class HttpMessage:
    """One POST; ``secrets`` non-empty means the sender signs it (fresh timestamp per try)."""

    url: str
    body: bytes
    msg_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


class ChannelConfigError(ValueError):
    """The channel cannot be built as configured: a permanent failure, not worth a retry."""


def _url(channel: Channel) -> str:
    url = channel.config.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ChannelConfigError(f"channel {channel.id} needs an http(s) 'url' in its config")
    return url


def http_message(incident: Incident, channel: Channel, msg_id: str, now: datetime) -> HttpMessage:
    """The POST for a non-email channel; raises ``ChannelConfigError``."""
    secrets: tuple[str, ...] = ()
    body: dict[str, Any]
    if channel.type == "webhook":
        url, body, secrets = (
            _url(channel),
            webhook.body(incident, now),
            tuple(secrets_of(channel.secret)),
        )
    elif channel.type == "slack":
        url, body = _url(channel), slack.body(incident)
    elif channel.type == "discord":
        url, body = _url(channel), discord.body(incident)
    elif channel.type == "teams":
        url, body = _url(channel), teams.body(incident)
    elif channel.type == "pagerduty":
        if not channel.secret:
            raise ChannelConfigError(f"channel {channel.id} needs its routing key as secret")
        url, body = pagerduty.URL, pagerduty.body(incident, channel.secret)
    else:
        raise ChannelConfigError(f"channel type {channel.type!r} is not sent over HTTP")
    return _message(url, body, msg_id, secrets)


def digest_message(digest: Digest, channel: Channel, msg_id: str, now: datetime) -> HttpMessage:
    """The POST of a digest for a non-email channel; raises ``ChannelConfigError``."""
    secrets: tuple[str, ...] = ()
    body: dict[str, Any]
    if channel.type == "webhook":
        body, secrets = webhook.digest_body(digest, now), tuple(secrets_of(channel.secret))
    elif channel.type == "slack":
        body = slack.digest_body(digest)
    elif channel.type == "discord":
        body = discord.digest_body(digest)
    elif channel.type == "teams":
        body = teams.digest_body(digest)
    else:
        raise ChannelConfigError(f"channel type {channel.type!r} takes no HTTP digests")
    return _message(_url(channel), body, msg_id, secrets)


def _message(url: str, body: dict[str, Any], msg_id: str, secrets: tuple[str, ...]) -> HttpMessage:
    return HttpMessage(
        url=url,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        msg_id=msg_id,
        headers={"content-type": "application/json", "user-agent": "Pulseline-Alerts/1"},
        secrets=secrets,
    )
