"""Slack incoming-webhook message: Block Kit header, explanation, fields and a links context.

Texts are cut to Slack's limits (header 150, section 3000, field 2000, 10 fields/elements).
"""

from __future__ import annotations

from typing import Any

from alerting.channels import digest_text
from alerting.delivery import Digest
from alerting.incident import Incident

_STATE_ICON = {
    "open": ":red_circle:",
    "acked": ":large_yellow_circle:",
    "resolved": ":white_check_mark:",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(incident: Incident) -> dict[str, Any]:
    headline = f"[{incident.state.upper()}] {incident.title}"
    fields = [
        ("Severity", incident.severity),
        ("Kind", incident.kind),
        ("Project", str(incident.project_id)),
        ("Occurrences", str(incident.occurrences)),
        ("Opened", incident.opened_at.isoformat()),
    ]
    summary = f"{_STATE_ICON[incident.state]} {_escape(incident.explanation or incident.title)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(headline, 150)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(summary, 3000),
            },
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{_escape(value)}", 2000)}
                for name, value in fields
            ],
        },
    ]
    links = [f"<{url}|{_escape(label)}>" for label, url in list(incident.links.items())[:10]]
    if links:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in links]}
        )
    return {"text": _cut(headline, 3000), "blocks": blocks}


def digest_body(digest: Digest) -> dict[str, Any]:
    headline = f"[DIGEST] {digest_text.headline(digest)}"
    shown = [
        f"{_STATE_ICON[i.state]} {_escape(i.title)} ({_escape(i.severity)}, {_escape(i.kind)})"
        for i in digest.incidents[: digest_text.SHOWN]
    ]
    if more := digest_text.rest(digest):
        shown.append(f"_{more}_")
    counts = [("By kind", digest.kinds()), ("By severity", digest.severities())]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(headline, 150)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{_escape(digest_text.tally(c))}", 2000)}
                for name, c in counts
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut("\n".join(shown), 3000)}},
    ]
    return {"text": _cut(headline, 3000), "blocks": blocks}
