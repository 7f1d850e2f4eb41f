"""Which channels an incident transition goes to: a pure function of rules, channels and ``now``.

A rule matches when it belongs to the incident's project, is not muted at ``now``, and each of
its non-empty filters (kinds, severities, monitors, tags: any shared tag) accepts the incident.
A monitor inside one of its maintenance windows routes nowhere. Disabled channels, channels of
another project and unknown ids are dropped; the result keeps first-seen order, no duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from alerting.incident import Incident
from pulseline.control.entities import AlertRule, Channel, MaintenanceWindow


def rule_matches(rule: AlertRule, incident: Incident, now: datetime) -> bool:
    if rule.project_id != incident.project_id:
        return False
    if rule.muted_until is not None and now < rule.muted_until:
        return False
    if rule.kinds and incident.kind not in rule.kinds:
        return False
    if rule.severities and incident.severity not in rule.severities:
        return False
    if rule.monitors and incident.monitor_id not in rule.monitors:
        return False
    return not rule.tags or bool(set(rule.tags) & set(incident.tags))


def in_maintenance(windows: Sequence[MaintenanceWindow], now: datetime) -> bool:
    return any(w.start <= now < w.end for w in windows)


def route(
    incident: Incident,
    rules: Iterable[AlertRule],
    channels: Mapping[str, Channel],
    now: datetime,
    maintenance: Sequence[MaintenanceWindow] = (),
) -> list[str]:
    """Channel ids to notify; ``maintenance`` holds the incident's monitor's windows."""
    if in_maintenance(maintenance, now):
        return []
    chosen: list[str] = []
    for rule in rules:
        if not rule_matches(rule, incident, now):
            continue
        for channel_id in rule.channels:
            channel = channels.get(channel_id)
            if channel is None or channel.disabled or channel.project_id != incident.project_id:
                continue
            if channel_id not in chosen:
                chosen.append(channel_id)
    return chosen
