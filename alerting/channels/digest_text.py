"""Words the digest forms of the chat and email channels share. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from alerting.delivery import Digest
from alerting.incident import Incident
from alerting.severity import COLOURS, Level, level

SHOWN = 10  # members listed in a chat message; the rest is counted
_VERBS = {
    "incident.opened": "opened",
    "incident.acknowledged": "acknowledged",
    "incident.resolved": "resolved",
}


def tally(counts: Mapping[str, int]) -> str:
    """``{"b": 1, "a": 3}`` -> ``"3 a, 1 b"``: largest first, then by name."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {name}" for name, count in ordered)


def headline(digest: Digest) -> str:
    """E.g. ``5 incident updates: 3 opened, 2 resolved``."""
    verbs = {_VERBS.get(event, event): n for event, n in digest.counts().items()}
    return f"{len(digest.incidents)} incident updates: {tally(verbs)}"


def line(incident: Incident) -> str:
    return f"[{incident.state.upper()}] {incident.title} ({incident.severity}, {incident.kind})"


def rest(digest: Digest, shown: int = SHOWN) -> str:
    """``and N more`` for what a short list leaves out; empty when nothing is left out."""
    left = len(digest.incidents) - shown
    return f"and {left} more" if left > 0 else ""


def worst(digest: Digest) -> Level | None:
    """The highest level among members not yet resolved; ``None`` once all are resolved."""
    levels = {level(i.severity) for i in digest.incidents if i.state != "resolved"}
    return next((lv for lv in COLOURS if lv in levels), None)
