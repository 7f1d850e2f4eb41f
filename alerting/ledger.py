"""The runner's memory: a fold of ``Delivery`` records (pure; ``now`` is passed in).

``apply`` takes records in any order per delivery id's attempts (a later attempt wins). From
them the ledger answers: was this transition already notified to this channel (noise
control: one notification per (incident, state, channel), whatever its version), which
deliveries still wait for a retry, and which open incidents are due a reminder. A digest
writes one record per member, so each member transition counts as handled on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerting.delivery import delivery_id
from alerting.incident import Incident
from pulseline.records.alerts import Delivery, DeliveryStatus

Transition = tuple[str, str, str]  # incident id, state, channel id


def reminder_id(incident: Incident, channel_id: str, number: int) -> str:
    """The webhook-id of reminder ``number`` (1-based) of an open transition."""
    return f"{delivery_id(incident, channel_id)}_r{number}"


@dataclass(frozen=True)
class Reminder:
    incident: Incident
    channel_id: str
    number: int

    @property
    def delivery_id(self) -> str:
        return reminder_id(self.incident, self.channel_id, self.number)


@dataclass
class Ledger:
    latest: dict[str, Delivery] = field(default_factory=dict)
    handled: set[Transition] = field(default_factory=set)
    incidents: dict[str, Incident] = field(default_factory=dict)
    notified_at: dict[tuple[str, str], datetime] = field(default_factory=dict)
    reminders: dict[tuple[str, str], int] = field(default_factory=dict)

    def apply(self, record: Delivery) -> None:
        previous = self.latest.get(record.delivery_id)
        if previous is not None and previous.attempt > record.attempt:
            return
        self.latest[record.delivery_id] = record
        self.handled.add((record.incident_id, record.state, record.channel_id))
        self.observe(Incident.from_json(record.incident))
        pair = (record.incident_id, record.channel_id)
        if record.kind == "reminder":
            number = int(record.delivery_id.rsplit("_r", 1)[1])
            self.reminders[pair] = max(self.reminders.get(pair, 0), number)
        told = record.status is DeliveryStatus.DELIVERED or (
            record.kind == "reminder" and record.status.finished
        )
        if told and record.state == "open":  # a failed reminder still waits a full interval
            self.notified_at[pair] = max(record.at, self.notified_at.get(pair, record.at))

    def observe(self, incident: Incident) -> None:
        """Remember the newest version of an incident (from Kafka or from a record)."""
        known = self.incidents.get(incident.id)
        if known is None or known.version <= incident.version:
            self.incidents[incident.id] = incident

    def is_finished(self, delivery: str) -> bool:
        record = self.latest.get(delivery)
        return record is not None and record.status.finished

    def was_handled(self, incident: Incident, channel_id: str) -> bool:
        return (incident.id, incident.state, channel_id) in self.handled

    def open_handled(self, incident: Incident, channel_id: str) -> bool:
        """Whether this channel was told (or is being told) that ``incident`` opened."""
        return (incident.id, "open", channel_id) in self.handled

    def pending(self) -> list[Delivery]:
        """Latest attempts that asked for a retry, soonest first."""
        waiting = [r for r in self.latest.values() if r.status is DeliveryStatus.RETRYING]
        return sorted(waiting, key=lambda r: (r.next_attempt_at or r.at, r.delivery_id))

    def due_reminders(self, every: timedelta, now: datetime) -> list[Reminder]:
        """For each incident still open (newest version known), each channel told of its
        opening at least ``every`` ago gets the next reminder, unless one is in the ledger."""
        if every <= timedelta(0):
            return []
        due: list[Reminder] = []
        for (incident_id, channel_id), told in sorted(self.notified_at.items()):
            incident = self.incidents.get(incident_id)
            if incident is None or incident.state != "open" or now - told < every:
                continue
            number = self.reminders.get((incident_id, channel_id), 0) + 1
            reminder = Reminder(incident, channel_id, number)
            if reminder.delivery_id not in self.latest:
                due.append(reminder)
        return due
