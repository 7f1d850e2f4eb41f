"""The digest form of each channel's payload, and the words they share."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from alerting.channels import ChannelConfigError, digest_message, digest_text
from alerting.channels.discord import payload as discord
from alerting.channels.email import payload as email
from alerting.channels.slack import payload as slack
from alerting.channels.teams import payload as teams
from alerting.channels.webhook import payload as webhook
from alerting.delivery import Digest, Outcome
from alerting.dispatch import Dispatcher
from alerting.incident import Incident
from alerting.send import HttpSender
from alerting.severity import COLOURS, RESOLVED_COLOUR
from pulseline.control.entities import Channel
from tests.unit.test_alert_incident import T0, incident


def member(n: int, **overrides: Any) -> Incident:
    base: dict[str, Any] = {
        "id": f"i{n}",
        "title": f"Job {n} failed",
        "updated_at": (T0 + timedelta(seconds=n)).isoformat(),
    }
    return incident(**{**base, **overrides})


def digest(*incidents: Incident) -> Digest:
    return Digest("c1", incidents[0].updated_at, incidents)


BURST = digest(
    member(0),
    member(1, severity="warning", kind="new_issue"),
    member(2, state="resolved"),
)
BIG = digest(*(member(n) for n in range(25)))


def channel(type_: str, **overrides: Any) -> Channel:
    base: dict[str, Any] = {"id": "c1", "project_id": 7, "name": "c", "slug": "c", "type": type_}
    return Channel(**{**base, **overrides})


TALLY_CASES = [
    ("largest first", {"a": 1, "b": 3}, "3 b, 1 a"),
    ("ties by name", {"z": 2, "y": 2}, "2 y, 2 z"),
    ("empty", {}, ""),
]


@pytest.mark.parametrize(
    ("counts", "text"), [c[1:] for c in TALLY_CASES], ids=[c[0] for c in TALLY_CASES]
)
def test_counts_read_largest_first(counts: dict[str, int], text: str) -> None:
    assert digest_text.tally(counts) == text


WORST_CASES = [
    ("the highest open severity", BURST, "critical"),
    (
        "resolved members do not count",
        digest(member(0, state="resolved"), member(1, severity="warn")),
        "warning",
    ),
    ("all resolved", digest(member(0, state="resolved"), member(1, state="resolved")), None),
]


@pytest.mark.parametrize(
    ("burst", "worst"), [c[1:] for c in WORST_CASES], ids=[c[0] for c in WORST_CASES]
)
def test_a_digest_is_coloured_by_its_worst_unresolved_member(
    burst: Digest, worst: str | None
) -> None:
    assert digest_text.worst(burst) == worst


def test_the_headline_counts_transitions_by_what_happened() -> None:
    assert digest_text.headline(BURST) == "3 incident updates: 2 opened, 1 resolved"
    assert digest_text.rest(BIG) == "and 15 more"
    assert digest_text.rest(BURST) == ""


def test_the_webhook_digest_carries_counts_and_every_member() -> None:
    body = webhook.digest_body(BIG, now=T0)
    assert body["type"] == "incident.digest"
    assert body["timestamp"] == T0.isoformat()
    data = body["data"]
    assert (data["count"], data["project_id"]) == (25, 7)
    assert data["counts"] == {"incident.opened": 25}
    assert data["kinds"] == {"monitor_down": 25}
    assert data["severities"] == {"critical": 25}
    assert [i["id"] for i in data["incidents"]] == [f"i{n}" for n in range(25)]
    assert data["window_start"] == T0.isoformat()


def test_slack_digest_lists_ten_members_and_counts_the_rest() -> None:
    body = slack.digest_body(BIG)
    header, counts, members = body["blocks"]
    assert header["text"]["text"] == "[DIGEST] 25 incident updates: 25 opened"
    assert counts["fields"] == [
        {"type": "mrkdwn", "text": "*By kind*\n25 monitor_down"},
        {"type": "mrkdwn", "text": "*By severity*\n25 critical"},
    ]
    lines = members["text"]["text"].split("\n")
    assert len(lines) == 11
    assert lines[0] == ":red_circle: Job 0 failed (critical, monitor_down)"
    assert lines[-1] == "_and 15 more_"
    assert body["text"] == header["text"]["text"]


def test_slack_digest_escapes_member_titles() -> None:
    body = slack.digest_body(digest(member(0, title="<@here> & co"), member(1)))
    assert "&lt;@here&gt; &amp; co" in body["blocks"][2]["text"]["text"]


@pytest.mark.parametrize(
    ("burst", "colour"),
    [
        (BURST, COLOURS["critical"]),
        (digest(member(0, state="resolved"), member(1, state="resolved")), RESOLVED_COLOUR),
    ],
    ids=["open members", "all resolved"],
)
def test_discord_digest_is_one_embed_coloured_by_the_worst_member(
    burst: Digest, colour: int
) -> None:
    body = discord.digest_body(burst)
    (embed,) = body["embeds"]
    assert embed["color"] == colour
    assert embed["title"].startswith("[DIGEST] ")
    assert body["allowed_mentions"] == {"parse": []}


def test_discord_digest_counts_by_kind_and_severity() -> None:
    (embed,) = discord.digest_body(BURST)["embeds"]
    assert [f["name"] for f in embed["fields"]] == ["By kind", "By severity"]
    assert embed["fields"][1]["value"] == "2 critical, 1 warning"
    assert embed["description"].split("\n")[1] == "[OPEN] Job 1 failed (warning, new_issue)"
    assert embed["timestamp"] == (T0 + timedelta(seconds=2)).isoformat()


def test_teams_digest_is_an_adaptive_card_with_counts_and_members() -> None:
    body = teams.digest_body(BIG)
    (attachment,) = body["attachments"]
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, facts, members = card["body"]
    assert title["color"] == "Attention"
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "By kind": "25 monitor_down",
        "By severity": "25 critical",
        "Project": "7",
    }
    assert members["text"].split("\n")[-1] == "and 15 more"


def test_email_digest_lists_every_member_in_both_parts() -> None:
    msg = email.digest_message(BIG, "alerts@pulse.example", ["ops@example.com"])
    assert msg["Subject"] == "[Pulseline DIGEST] 25 incident updates: 25 opened"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().count("- [OPEN] Job") == 25
    assert html.get_content().count("<li>") == 25


@pytest.mark.parametrize("type_", ["webhook", "slack", "discord", "teams"])
def test_each_http_channel_has_a_digest_message(type_: str) -> None:
    message = digest_message(BURST, channel(type_, config={"url": "https://x.example/h"}), "m", T0)
    assert message.url == "https://x.example/h"
    assert message.msg_id == "m"
    assert json.loads(message.body)


def test_pagerduty_takes_no_digest() -> None:
    with pytest.raises(ChannelConfigError, match="no HTTP digests"):
        digest_message(BURST, channel("pagerduty", secret="rk"), "m", T0)


async def _resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def test_the_dispatcher_posts_a_digest_under_its_webhook_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def go() -> Outcome:
        http = HttpSender(resolver=_resolver, transport=httpx.MockTransport(handler))
        try:
            hook = channel("webhook", config={"url": "https://hooks.example/in"})
            timed = await Dispatcher(http, None, "a@b").attempt_digest(BURST, hook, "msg_d", T0)
        finally:
            await http.aclose()
        return timed.attempt.outcome

    assert asyncio.run(go()) is Outcome.OK
    (request,) = seen
    assert request.headers["webhook-id"] == "msg_d"
    assert json.loads(request.content)["data"]["count"] == 3


def test_an_email_digest_without_a_relay_fails_for_good() -> None:
    async def go() -> Outcome:
        http = HttpSender(resolver=_resolver)
        try:
            mail = channel("email", config={"to": ["ops@example.com"]})
            timed = await Dispatcher(http, None, "a@b").attempt_digest(BURST, mail, "msg_d", T0)
        finally:
            await http.aclose()
        return timed.attempt.outcome

    assert asyncio.run(go()) is Outcome.FAILED
