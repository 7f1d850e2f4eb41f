from __future__ import annotations

import json
from typing import Any

import pytest

from alerting.channels import ChannelConfigError, http_message
from alerting.channels.discord import payload as discord
from alerting.channels.email import payload as email
from alerting.channels.pagerduty import payload as pagerduty
from alerting.channels.slack import payload as slack
from alerting.channels.teams import payload as teams
from alerting.channels.webhook import payload as webhook
from alerting.severity import RESOLVED_COLOUR, level
from pulseline.control.entities import Channel
from tests.unit.test_alert_incident import T0, incident


def channel(type_: str, **overrides: Any) -> Channel:
    base: dict[str, Any] = {"id": "c1", "project_id": 7, "name": "c", "slug": "c", "type": type_}
    return Channel(**{**base, **overrides})


def test_the_generic_webhook_wraps_the_incident_under_its_event_type() -> None:
    body = webhook.body(incident(state="resolved"), now=T0)
    assert body["type"] == "incident.resolved"
    assert body["timestamp"] == T0.isoformat()
    assert body["data"]["dedup_key"] == "monitor_down:mon-1"


def test_slack_gets_header_section_fields_and_a_links_context() -> None:
    body = slack.body(incident(explanation="disk <full> & slow"))
    header, section, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[OPEN] Backup job is late"},
    }
    assert section["text"]["type"] == "mrkdwn"
    assert "disk &lt;full&gt; &amp; slow" in section["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Severity*\ncritical"} in section["fields"]
    assert context["elements"] == [
        {"type": "mrkdwn", "text": "<https://pulse.example/monitors/mon-1|Monitor>"}
    ]
    assert body["text"] == "[OPEN] Backup job is late"


def test_slack_cuts_a_long_title_to_the_header_limit() -> None:
    text = slack.body(incident(title="x" * 500))["blocks"][0]["text"]["text"]
    assert len(text) == 150 and text.endswith("…")


def test_slack_leaves_out_the_context_when_there_are_no_links() -> None:
    assert [b["type"] for b in slack.body(incident(links={}))["blocks"]] == ["header", "section"]


@pytest.mark.parametrize(
    ("severity", "state", "colour"),
    [
        ("critical", "open", 0xD32F2F),
        ("warning", "open", 0xFBC02D),
        ("something", "open", 0x1976D2),
        ("critical", "resolved", RESOLVED_COLOUR),
    ],
)
def test_discord_colours_the_embed_by_severity(severity: str, state: str, colour: int) -> None:
    body = discord.body(incident(severity=severity, state=state))
    assert body["embeds"][0]["color"] == colour
    assert body["allowed_mentions"] == {"parse": []}


def test_discord_embed_carries_title_description_and_link_fields() -> None:
    embed = discord.body(incident())["embeds"][0]
    assert embed["title"] == "[OPEN] Backup job is late"
    assert embed["description"].startswith("No ping")
    assert {
        "name": "Monitor",
        "value": "https://pulse.example/monitors/mon-1",
        "inline": False,
    } in (embed["fields"])


def test_teams_gets_an_adaptive_card_attachment() -> None:
    body = teams.body(incident())
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "[OPEN] Backup job is late"
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Monitor",
            "url": "https://pulse.example/monitors/mon-1",
        }
    ]


def test_email_has_a_subject_and_plain_and_html_parts() -> None:
    msg = email.message(incident(title="<b>late</b>"), "alerts@x.test", ["a@x.test", "b@x.test"])
    assert msg["Subject"] == "[Pulseline OPEN] critical: <b>late</b>"
    assert msg["To"] == "a@x.test, b@x.test"
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = (part.get_content() for part in msg.iter_parts())
    assert "No ping for 15 minutes" in plain and "https://pulse.example/monitors/mon-1" in plain
    assert "&lt;b&gt;late&lt;/b&gt;" in html
    assert '<a href="https://pulse.example/monitors/mon-1">Monitor</a>' in html


@pytest.mark.parametrize(
    ("state", "action"),
    [("open", "trigger"), ("acked", "acknowledge"), ("resolved", "resolve")],
)
def test_pagerduty_maps_each_state_to_an_event_action_on_one_dedup_key(
    state: str, action: str
) -> None:
    event = pagerduty.body(incident(state=state), routing_key="R" * 32)
    assert event["event_action"] == action
    assert event["dedup_key"] == "monitor_down:mon-1"
    assert event["routing_key"] == "R" * 32
    assert ("payload" in event) is (state == "open")


def test_pagerduty_trigger_has_summary_source_and_severity() -> None:
    payload = pagerduty.body(incident(severity="high", monitor_id="mon-1"), "k")["payload"]
    assert payload["summary"] == "Backup job is late: No ping for 15 minutes (grace 5 min)."
    assert payload["source"] == "mon-1"
    assert payload["severity"] == "error"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", "critical"),
        ("FATAL", "critical"),
        ("high", "error"),
        ("error", "error"),
        ("medium", "warning"),
        ("warning", "warning"),
        ("low", "info"),
        ("", "info"),
    ],
)
def test_every_severity_maps_to_one_of_four_levels(severity: str, expected: str) -> None:
    assert level(severity) == expected


def test_a_webhook_message_is_signed_with_every_secret_of_the_channel() -> None:
    ch = channel("webhook", config={"url": "https://hooks.example/x"}, secret="whsec_a whsec_b")
    msg = http_message(incident(), ch, "msg_1", T0)
    assert msg.secrets == ("whsec_a", "whsec_b")
    assert json.loads(msg.body)["type"] == "incident.opened"


def test_pagerduty_messages_go_to_the_events_api_with_the_secret_as_routing_key() -> None:
    msg = http_message(incident(), channel("pagerduty", secret="rk"), "msg_1", T0)
    assert msg.url == "https://events.pagerduty.com/v2/enqueue"
    assert json.loads(msg.body)["routing_key"] == "rk"
    assert msg.secrets == ()


@pytest.mark.parametrize(
    "bad",
    [
        channel("slack"),
        channel("discord", config={"url": "ftp://x"}),
        channel("pagerduty"),
        channel("email", config={"to": ["a@x.test"]}),
    ],
    ids=["no url", "not http", "no routing key", "email is not http"],
)
def test_a_misconfigured_channel_is_a_config_error(bad: Channel) -> None:
    with pytest.raises(ChannelConfigError):
        http_message(incident(), bad, "msg_1", T0)
