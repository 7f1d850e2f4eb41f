"""Digest jobs: one message to one channel for a burst of transitions. Pure.

A digest's ``webhook-id`` is ``msg_`` + a UUIDv5 of the channel id and the sorted
``(incident id, version)`` of its members, so the same burst read again after a crash gets the
same id and receivers can drop the repeat. Each attempt writes one ``Delivery`` per member, id
``<digest id>_m<the member's own delivery id without msg_>``: the ledger then counts every member
transition as handled (never sent again on its own) and, after a restart, rebuilds a digest that
was waiting for a retry from its members' records.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerting.delivery import NAMESPACE, Digest, delivery_id
from alerting.incident import Incident
from alerting.jobs import Job, judge, written
from alerting.send import Attempt
from pulseline.control.entities import Channel
from pulseline.records.alerts import Delivery

# PagerDuty is left out: its incidents open and resolve one dedup_key at a time, and a
# digest's trigger would never be resolved by its members' resolves.
DIGESTIBLE = frozenset({"webhook", "slack", "discord", "teams", "email"})
MEMBER = "_m"


def digest_id(channel_id: str, incidents: Iterable[Incident]) -> str:
    members = ",".join(sorted(f"{i.id}:{i.version}" for i in incidents))
    return "msg_" + uuid.uuid5(NAMESPACE, f"digest:{channel_id}:{members}").hex


def member_id(digest: str, incident: Incident, channel_id: str) -> str:
    return f"{digest}{MEMBER}{delivery_id(incident, channel_id).removeprefix('msg_')}"


def digest_of(record_id: str) -> str | None:
    """The digest id a member record belongs to; ``None`` for any other record."""
    head, found, _ = record_id.partition(MEMBER)
    return head if found else None


@dataclass(frozen=True)
class DigestJob:
    digest: Digest
    channel: Channel
    delivery_id: str
    attempt: int = 1

    @classmethod
    def of(cls, digest: Digest, channel: Channel) -> DigestJob:
        return cls(digest, channel, digest_id(channel.id, digest.incidents))

    def members(self) -> list[Job]:
        """One job per member, only to write its record; the message is the digest's."""
        return [
            Job(i, self.channel, member_id(self.delivery_id, i, self.channel.id), self.attempt)
            for i in self.digest.incidents
        ]

    @classmethod
    def resume(cls, pending: Sequence[Delivery], channel: Channel) -> DigestJob:
        """The next attempt after the ``retrying`` records of one digest's members."""
        head = digest_of(pending[0].delivery_id)
        if head is None:
            raise ValueError(f"{pending[0].delivery_id} is not a digest member")
        members = sorted((Incident.from_json(p.incident) for p in pending), key=_when)
        digest = Digest(channel.id, members[0].updated_at, tuple(members))
        return cls(digest, channel, head, max(p.attempt for p in pending) + 1)


def _when(incident: Incident) -> datetime:
    return incident.updated_at


def record_digest(
    job: DigestJob, result: Attempt, latency_ms: float | None, now: datetime, rng: random.Random
) -> list[Delivery]:
    """Every member shares the attempt's outcome and its retry time."""
    verdict = judge(job.attempt, result, now, rng)
    return [written(member, verdict, result, latency_ms, now) for member in job.members()]


def regroup(pending: Iterable[Delivery]) -> list[list[Delivery]]:
    """Waiting records as units to resume: a single delivery alone, a digest's members together
    (first-seen order is kept)."""
    units: dict[str, list[Delivery]] = {}
    for record in pending:
        units.setdefault(digest_of(record.delivery_id) or record.delivery_id, []).append(record)
    return list(units.values())
