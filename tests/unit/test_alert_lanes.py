"""Which transitions of one flush become digests, and in what order everything is sent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerting.delivery import delivery_id
from alerting.digest import DigestJob
from alerting.jobs import Job
from alerting.lanes import Unit, lanes
from pulseline.control.entities import Channel
from tests.unit.test_alert_incident import T0, incident

CHANNELS = {
    "a": Channel(id="a", project_id=7, name="a", slug="a", type="webhook"),
    "b": Channel(id="b", project_id=7, name="b", slug="b", type="slack"),
    "pd": Channel(id="pd", project_id=7, name="pd", slug="pd", type="pagerduty"),
}
WINDOW = timedelta(seconds=5)


def job(spec: str) -> Job:
    """``"a:k1@3"``: channel a, dedup key k1, updated 3 s after T0; ``"a:k1@3/resolved"``."""
    where, _, state = spec.partition("/")
    channel, rest = where.split(":")
    key, at = rest.split("@")
    inc = incident(
        id=f"{key}-{state or 'open'}",
        dedup_key=key,
        state=state or "open",
        updated_at=(T0 + timedelta(seconds=float(at))).isoformat(),
    )
    return Job(inc, CHANNELS[channel], delivery_id(inc, channel))


def show(unit: Unit) -> str:
    if isinstance(unit, DigestJob):
        return f"{unit.channel.id}: digest " + ",".join(i.id for i in unit.digest.incidents)
    return f"{unit.channel.id}: {unit.incident.id}"


CASES = [
    (
        "below the threshold nothing is digested: one lane per dedup key",
        ["a:k1@0", "a:k2@1", "a:k1@2/resolved"],
        4,
        [["a: k1-open", "a: k1-resolved"], ["a: k2-open"]],
    ),
    (
        "a burst at the threshold becomes one digest",
        ["a:k1@0", "a:k2@1", "a:k3@2"],
        3,
        [["a: digest k1-open,k2-open,k3-open"]],
    ),
    (
        "a channel's later stragglers follow its digest in the same lane",
        ["a:k1@0", "a:k2@1", "a:k3@2", "a:k1@7/resolved"],
        3,
        [["a: digest k1-open,k2-open,k3-open", "a: k1-resolved"]],
    ),
    (
        "transitions further apart than the window are not one burst",
        ["a:k1@0", "a:k2@5", "a:k3@10"],
        2,
        [["a: k1-open"], ["a: k2-open"], ["a: k3-open"]],
    ),
    (
        "other channels keep their own lanes",
        ["a:k1@0", "b:k1@0", "a:k2@1", "a:k3@2"],
        3,
        [["b: k1-open"], ["a: digest k1-open,k2-open,k3-open"]],
    ),
    (
        "pagerduty is never digested",
        ["pd:k1@0", "pd:k2@0", "pd:k3@0"],
        2,
        [["pd: k1-open"], ["pd: k2-open"], ["pd: k3-open"]],
    ),
    (
        "two bursts of one channel go in time order",
        ["a:k3@10", "a:k4@11", "a:k1@0", "a:k2@1"],
        2,
        [["a: digest k1-open,k2-open", "a: digest k3-open,k4-open"]],
    ),
]


@pytest.mark.parametrize(
    ("specs", "threshold", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bursts_become_digests_and_order_is_kept(
    specs: list[str], threshold: int, expected: list[list[str]]
) -> None:
    planned = lanes([job(s) for s in specs], WINDOW, threshold)
    assert [[show(u) for u in lane] for lane in planned] == expected


def test_a_zero_window_turns_digests_off() -> None:
    jobs = [job(s) for s in ["a:k1@0", "a:k2@0", "a:k3@0"]]
    planned = lanes(jobs, timedelta(0), 2)
    assert planned == [[jobs[0]], [jobs[1]], [jobs[2]]]


def test_a_digest_keeps_the_channel_of_its_members() -> None:
    ((digest,),) = lanes([job(s) for s in ["b:k1@0", "b:k2@0"]], WINDOW, 2)
    assert isinstance(digest, DigestJob)
    assert digest.channel == CHANNELS["b"]
    assert digest.digest.channel_id == "b"
