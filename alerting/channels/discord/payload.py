"""Discord webhook message: one embed coloured by severity (green once resolved).

Limits: title 256, description 4096, 25 fields; ``allowed_mentions`` is empty so incident text
can never ping anyone.
"""

from __future__ import annotations

from typing import Any

from alerting.channels import digest_text
from alerting.delivery import Digest
from alerting.incident import Incident
from alerting.severity import COLOURS, RESOLVED_COLOUR, level


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body(incident: Incident) -> dict[str, Any]:
    colour = RESOLVED_COLOUR if incident.state == "resolved" else COLOURS[level(incident.severity)]
    fields = [
        {"name": "Severity", "value": incident.severity or "-", "inline": True},
        {"name": "Kind", "value": incident.kind or "-", "inline": True},
        {"name": "Occurrences", "value": str(incident.occurrences), "inline": True},
    ]
    fields += [
        {"name": _cut(label, 256), "value": _cut(url, 1024), "inline": False}
        for label, url in list(incident.links.items())[:22]
    ]
    embed: dict[str, Any] = {
        "title": _cut(f"[{incident.state.upper()}] {incident.title}", 256),
        "description": _cut(incident.explanation, 4096),
        "color": colour,
        "fields": fields,
        "timestamp": incident.updated_at.isoformat(),
        "footer": {"text": f"project {incident.project_id} · {incident.dedup_key}"[:2048]},
    }
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


def digest_body(digest: Digest) -> dict[str, Any]:
    worst = digest_text.worst(digest)
    shown = [digest_text.line(i) for i in digest.incidents[: digest_text.SHOWN]]
    if more := digest_text.rest(digest):
        shown.append(more)
    fields = [
        {"name": "By kind", "value": _cut(digest_text.tally(digest.kinds()), 1024), "inline": True},
        {
            "name": "By severity",
            "value": _cut(digest_text.tally(digest.severities()), 1024),
            "inline": True,
        },
    ]
    embed: dict[str, Any] = {
        "title": _cut(f"[DIGEST] {digest_text.headline(digest)}", 256),
        "description": _cut("\n".join(shown), 4096),
        "color": RESOLVED_COLOUR if worst is None else COLOURS[worst],
        "fields": fields,
        "timestamp": digest.incidents[-1].updated_at.isoformat(),
        "footer": {"text": f"project {digest.project_id}"},
    }
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}
