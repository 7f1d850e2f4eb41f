"""PagerDuty Events API v2 event: trigger, acknowledge or resolve, sharing one ``dedup_key``.

The channel's secret is the integration's routing key. ``payload`` goes only with a trigger,
as the API requires; summaries are cut to 1024 characters.
"""

from __future__ import annotations

from typing import Any

from alerting.incident import Incident
from alerting.severity import level

URL = "https://events.pagerduty.com/v2/enqueue"
_ACTIONS = {"open": "trigger", "acked": "acknowledge", "resolved": "resolve"}


def body(incident: Incident, routing_key: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": _ACTIONS[incident.state],
        "dedup_key": incident.dedup_key,
    }
    if incident.state == "open":
        summary = (
            incident.title
            if not incident.explanation
            else (f"{incident.title}: {incident.explanation}")
        )
        event["payload"] = {
            "summary": summary[:1024],
            "source": incident.monitor_id or f"pulseline project {incident.project_id}",
            "severity": level(incident.severity),
            "timestamp": incident.opened_at.isoformat(),
            "class": incident.kind,
            "custom_details": {"occurrences": incident.occurrences, "incident_id": incident.id},
        }
        event["links"] = [{"href": url, "text": label} for label, url in incident.links.items()]
        event["client"] = "Pulseline"
    return event
