"""In what order one flush's jobs are sent, and which become digests. Pure.

A lane is sent in order; lanes go concurrently. Without a digest, each dedup key is one lane
(as before digests existed). A channel with a burst of at least ``threshold`` transitions whose
``updated_at`` lie within ``window`` gets one lane of its own instead: its bursts oldest first,
each one digest or, if smaller, its transitions one by one. So a channel never hears of a
transition before an earlier one of the same dedup key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from alerting.delivery import group_digests
from alerting.digest import DIGESTIBLE, DigestJob
from alerting.jobs import Job

Unit = Job | DigestJob


def lanes(jobs: Sequence[Job], window: timedelta, threshold: int) -> list[list[Unit]]:
    routed = [(j.channel.id, j.incident) for j in jobs if j.channel.type in DIGESTIBLE]
    bursts = group_digests(routed, window) if window > timedelta(0) else []
    digesting = {b.channel_id for b in bursts if len(b.incidents) >= threshold}
    by_key: dict[str, list[Unit]] = {}
    for job in jobs:
        if job.channel.id not in digesting:
            by_key.setdefault(job.incident.dedup_key, []).append(job)
    found = {(j.channel.id, j.incident.id, j.incident.version): j for j in jobs}
    by_channel: dict[str, list[Unit]] = {}
    for burst in bursts:
        if burst.channel_id not in digesting:
            continue
        members = [found[(burst.channel_id, i.id, i.version)] for i in burst.incidents]
        lane = by_channel.setdefault(burst.channel_id, [])
        if len(members) >= threshold:
            lane.append(DigestJob.of(burst, members[0].channel))
        else:
            lane.extend(members)
    return [*by_key.values(), *by_channel.values()]
