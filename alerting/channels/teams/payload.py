"""Microsoft Teams (Workflows webhook) message: an Adaptive Card 1.4 in ``attachments``."""

from __future__ import annotations

from typing import Any

from alerting.channels import digest_text
from alerting.delivery import Digest
from alerting.incident import Incident
from alerting.severity import level

_COLOUR = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}


def _card(headline: str, colour: str, body: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": headline,
                "weight": "Bolder",
                "size": "Medium",
                "color": colour,
                "wrap": True,
            },
            *body,
        ],
    }


def card(incident: Incident) -> dict[str, Any]:
    colour = "Good" if incident.state == "resolved" else _COLOUR[level(incident.severity)]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": incident.explanation, "wrap": True},
        {
            "type": "FactSet",
            "facts": [
                {"title": "Severity", "value": incident.severity},
                {"title": "Kind", "value": incident.kind},
                {"title": "Project", "value": str(incident.project_id)},
                {"title": "Occurrences", "value": str(incident.occurrences)},
            ],
        },
    ]
    actions = [
        {"type": "Action.OpenUrl", "title": label, "url": url}
        for label, url in incident.links.items()
    ]
    return {
        **_card(f"[{incident.state.upper()}] {incident.title}", colour, body),
        "actions": actions,
    }


def digest_card(digest: Digest) -> dict[str, Any]:
    worst = digest_text.worst(digest)
    shown = [f"- {digest_text.line(i)}" for i in digest.incidents[: digest_text.SHOWN]]
    if more := digest_text.rest(digest):
        shown.append(more)
    colour = "Good" if worst is None else _COLOUR[worst]
    body: list[dict[str, Any]] = [
        {
            "type": "FactSet",
            "facts": [
                {"title": "By kind", "value": digest_text.tally(digest.kinds())},
                {"title": "By severity", "value": digest_text.tally(digest.severities())},
                {"title": "Project", "value": str(digest.project_id)},
            ],
        },
        {"type": "TextBlock", "text": "\n".join(shown), "wrap": True},
    ]
    return _card(f"[DIGEST] {digest_text.headline(digest)}", colour, body)


def _message(content: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }


def body(incident: Incident) -> dict[str, Any]:
    return _message(card(incident))


def digest_body(digest: Digest) -> dict[str, Any]:
    return _message(digest_card(digest))
