"""Generic webhook body, in the Standard Webhooks shape ``{type, timestamp, data}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerting.incident import Incident


def body(incident: Incident, now: datetime) -> dict[str, Any]:
    return {
        "type": incident.event_type,
        "timestamp": now.isoformat(),
        "data": incident.to_json(),
    }
