"""Generic webhook body, in the Standard Webhooks shape ``{type, timestamp, data}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerting.delivery import Digest
from alerting.incident import Incident


def body(incident: Incident, now: datetime) -> dict[str, Any]:
    return {
        "type": incident.event_type,
        "timestamp": now.isoformat(),
        "data": incident.to_json(),
    }


def digest_body(digest: Digest, now: datetime) -> dict[str, Any]:
    """``incident.digest``: counts, then every member in full, oldest first."""
    return {
        "type": "incident.digest",
        "timestamp": now.isoformat(),
        "data": {
            "project_id": digest.project_id,
            "window_start": digest.window_start.isoformat(),
            "count": len(digest.incidents),
            "counts": digest.counts(),
            "kinds": digest.kinds(),
            "severities": digest.severities(),
            "incidents": [i.to_json() for i in digest.incidents],
        },
    }
