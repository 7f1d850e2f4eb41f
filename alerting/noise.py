"""Flapping protection: a monitor's failures alert only once it failed ``threshold`` runs in a row.

The incident book keeps one open ``monitor_failed`` incident per monitor while its runs keep
failing, adds 1 to ``occurrences`` for each further failed run and resolves it at the first
good run. So the streak is the incident's own ``occurrences``: nothing to store, the same after
a restart. Missed check-ins and late runs are not repeated (the monitor stays down until its
next ping), so they alert at once whatever the threshold.
"""

from __future__ import annotations

from alerting.delivery import FailureStreak
from alerting.incident import Incident

FLAPPING_KINDS = frozenset({"monitor_failed"})


def held_back(incident: Incident, threshold: int, open_notified: bool) -> bool:
    """Say nothing about this transition to a channel: an opening below the threshold, or an
    ack or resolve when the channel was not told of the opening. A threshold of 1 holds
    nothing back, as before flapping protection existed."""
    if incident.kind not in FLAPPING_KINDS or threshold <= 1:
        return False
    if incident.state == "open":
        return not FailureStreak(threshold, incident.occurrences).should_alert
    return not open_notified
