"""Microsoft Teams (Workflows webhook) message: an Adaptive Card 1.4 in ``attachments``."""

from __future__ import annotations

from typing import Any

from alerting.incident import Incident
from alerting.severity import level

_COLOUR = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}


def card(incident: Incident) -> dict[str, Any]:
    colour = "Good" if incident.state == "resolved" else _COLOUR[level(incident.severity)]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"[{incident.state.upper()}] {incident.title}",
                "weight": "Bolder",
                "size": "Medium",
                "color": colour,
                "wrap": True,
            },
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
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in incident.links.items()
        ],
    }


def body(incident: Incident) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(incident),
            }
        ],
    }
