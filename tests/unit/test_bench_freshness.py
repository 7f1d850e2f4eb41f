import asyncio
import contextlib
import struct
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

from pulseline.bench import (
    Outcomes,
    Probe,
    Profile,
    Tenant,
    _accounting,
    _probe,
    acked_rate,
    probe_event,
    summary,
    under_load_report,
)
from pulseline.bench_report import plot


def test_the_report_holds_percentiles_counts_and_the_load_rate() -> None:
    polls = [10.0] * 99 + [110.0]
    seen = [100.0, 200.0, 300.0, 400.0]
    started = [90.0, 150.0, 250.0, 390.0]
    report = under_load_report(seen, 0, 1, 15.0, 3120.5, 19.64, polls, started)
    assert report == {
        "p50": 250.0,
        "p95": 385.0,
        "p99": 397.0,
        "samples": 4,
        "timeouts": 0,
        "timeout_s": 15.0,
        "send_errors": 1,
        "load_events_per_s": 3120.5,
        "window_s": 19.6,
        "read_polls": 100,
        "poll_ms": {"p50": 10.0, "p95": 10.0, "p99": 11.0},
        "last_miss_ms": {"p50": 200.0, "p95": 369.0, "p99": 385.8},
    }


def test_a_timeout_counts_as_the_timeout_in_the_percentiles_not_dropped() -> None:
    seen = [1000.0] * 18
    report = under_load_report(seen, 2, 0, 15.0, 100.0, 10.0)
    assert report["samples"] == 18 and report["timeouts"] == 2
    # 2 of 20 never seen: p95 sits at the 15 s bound, not at the 1 s of those seen.
    assert report["p95"] == 15000.0
    assert report["p50"] == 1000.0


def test_only_timeouts_still_give_percentiles() -> None:
    report = under_load_report([], 3, 0, 2.0, None, 0.0)
    assert report["p50"] == report["p99"] == 2000.0
    assert report["samples"] == 0 and report["timeouts"] == 3


def test_no_probe_at_all_has_no_percentiles() -> None:
    report = under_load_report([], 0, 0, 15.0, None, 0.0)
    assert "p50" not in report and report["samples"] == 0


def test_the_load_rate_counts_requests_completed_in_the_window() -> None:
    # (started s, latency ms, acked): completions at 0.5, 1.1, 1.5, 2.5, 4.0, 5.5 and 9 s.
    timeline = [(0.4, 100.0, 100), (0.8, 300.0, 40), (1.0, 500.0, 100), (2.0, 500.0, 50)]
    timeline += [(3.9, 100.0, 0), (4.5, 1000.0, 60), (8.0, 1000.0, 100)]
    assert acked_rate(timeline, 1.0, 5.0) == 47.5  # 190 events over 4 s, by completion
    assert acked_rate(timeline, 0.0, 10.0) == 45.0
    assert acked_rate(timeline, 2.0, 2.0) is None
    assert acked_rate([], 0.0, 1.0) == 0.0


def test_the_probe_event_is_a_realistic_page_view_with_its_own_id() -> None:
    eid = str(uuid.uuid4())
    event = probe_event(eid, "bench-x")
    assert event["kind"] == "pageview" and event["event_id"] == eid
    assert event["environment"] == "bench-x"
    assert event["distinct_id"] == "bench-freshness-probe"
    assert event["attributes"]["url"].startswith("https://")


def test_probe_events_are_accounted_for_but_not_counted_as_load() -> None:
    tenants = [Tenant("bench-a-0", 1, "i", "r"), Tenant("bench-a-1", 2, "i", "r")]
    out = Outcomes()
    out.record(1, "ok", "202", ["a", "b"], ["a", "b"])
    out.record_probe(1, "ok", "202", ["p1"], ["p1"])
    out.record_probe(1, "indeterminate", "unanswered", ["p2"], [])
    stored = {1: Counter({"a": 1, "b": 1, "p1": 1, "p2": 1})}
    report = _accounting(tenants, out, stored)["bench-a-0"]
    assert report["phantoms"] == 0 and report["lost"] == 0
    assert report["acked"] == 3 and report["indeterminate"] == 1
    assert report["unacked_stored"] == 1
    assert out.acked_ids == ["a", "b"]  # the load's throughput is the load's alone
    assert out.statuses == Counter({"202": 1})
    assert [line.get("probe", False) for line in out.log] == [False, True, True]


def test_an_acked_probe_event_missing_from_storage_is_lost() -> None:
    tenants = [Tenant("bench-a-0", 1, "i", "r")]
    out = Outcomes()
    out.record_probe(1, "ok", "202", ["p1"], ["p1"])
    assert _accounting(tenants, out, {1: Counter()})["bench-a-0"]["lost"] == 1


def _result(under_load: dict[str, object]) -> dict[str, object]:
    return {
        "gateway": {"events_per_s": 3190.4},
        "freshness_ms": {"p50": 1120.0, "p95": 1280.0, "p99": 1330.0, "samples": 20},
        "freshness_under_load_ms": under_load,
    }


def test_the_summary_shows_idle_and_under_load_freshness() -> None:
    loaded = under_load_report([900.0, 1500.0, 2100.0], 1, 0, 15.0, 3050.0, 19.0)
    text = summary(_result(loaded))
    assert "gateway: 3,190 events/s" in text
    assert "freshness idle (after the load): p50 1.12 s, p95 1.28 s, p99 1.33 s (20 samples)" in (
        text
    )
    assert "freshness under load (3,050 events/s): p50 1.80 s" in text
    assert "(3 samples, 1 timeouts > 15 s, 0 send errors)" in text


def test_the_summary_of_a_failed_probe_says_so() -> None:
    loaded = {**under_load_report([], 0, 0, 15.0, None, 0.0), "error": "OSError: boom"}
    text = summary(_result(loaded))
    assert "freshness under load (- events/s): p50 -, p95 -, p99 -" in text
    assert text.endswith("freshness probe failed: OSError: boom")


class FakePipeline:
    """A gateway and read API in one: the gateway answers after ``answer_s``, the read API
    after ``read_s`` with what was visible when asked; an event is visible ``delay_s`` after
    its 202, except every ``never_every``-th; the n-th send (1-based) in ``refuse`` gets a
    503."""

    def __init__(
        self,
        delay_s: float,
        never_every: int = 0,
        refuse: frozenset[int] = frozenset(),
        answer_s: float = 0.0,
        read_s: float = 0.0,
    ):
        self.delay_s, self.never_every, self.refuse = delay_s, never_every, refuse
        self.answer_s, self.read_s = answer_s, read_s
        self.acked_at: dict[str, float] = {}
        self.never: set[str] = set()
        self.sends = 0
        self.bodies: list[bytes] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.sends += 1
            n = self.sends
            self.bodies.append(request.content)
            await asyncio.sleep(self.answer_s)
            if n in self.refuse:
                return httpx.Response(503)
            eid = httpx.Response(200, content=request.content).json()[0]["event_id"]
            self.acked_at[eid] = time.monotonic()
            if self.never_every and n % self.never_every == 0:
                self.never.add(eid)
            return httpx.Response(202, json={"event_ids": [eid]})
        asked = time.monotonic()
        await asyncio.sleep(self.read_s)
        eid = request.url.path.rsplit("/", 1)[-1]
        at = self.acked_at.get(eid)
        if eid in self.never or at is None or asked - at < self.delay_s:
            return httpx.Response(404)
        return httpx.Response(200, json={"event_id": eid})


class Stop(threading.Event):
    """Set after ``run_s`` by a timer; remembers when (perf_counter)."""

    def __init__(self, run_s: float) -> None:
        super().__init__()
        self.at = float("inf")
        threading.Timer(run_s, self.set).start()

    def set(self) -> None:
        self.at = time.perf_counter()
        super().set()


def _run_probe(fake: FakePipeline, stop: Stop, profile: Profile) -> Probe:
    probe = Probe()
    tenant = Tenant("bench-a-0", 1, "ingest", "read")
    asyncio.run(
        _probe(
            "http://gw",
            "http://api",
            tenant,
            "bench-a",
            profile,
            stop,
            probe,
            httpx.MockTransport(fake),
        )
    )
    return probe


def test_the_probe_measures_from_the_202_to_visible_and_counts_timeouts() -> None:
    # The gateway takes 2 s to answer: timed from the send, every figure would exceed 2 s.
    fake = FakePipeline(0.2, never_every=3, refuse=frozenset({2}), answer_s=2.0, read_s=0.1)
    profile = Profile(probe_interval_s=0.1, probe_poll_s=0.02, probe_timeout_s=0.8)
    probe = _run_probe(fake, Stop(1.0), profile)
    assert fake.sends >= 3  # the 3rd is never visible
    assert len(probe.requests) == fake.sends
    statuses = Counter(status for _, status, _ in probe.requests.values())
    assert statuses["503"] == 1 and statuses["202"] == fake.sends - 1
    # Every acked probe is either seen or a timeout: none is dropped.
    assert len(probe.visible_ms) + len(probe.timed_out) == fake.sends - 1
    assert set(probe.timed_out) == fake.never and probe.timed_out
    # From the 202, not from the send (2 s earlier); generous above for a loaded host.
    assert probe.visible_ms and all(100 <= ms < 1900 for ms in probe.visible_ms)
    assert probe.first_send is not None and probe.last_send is not None
    assert probe.last_send - probe.first_send >= 0.1 * (fake.sends - 1) - 0.01  # paced
    sent = [httpx.Response(200, content=body).json() for body in fake.bodies]
    assert all(len(batch) == 1 and batch[0]["kind"] == "pageview" for batch in sent)
    # A probe seen is polled past 0.2 s, one timed out until 0.8 s, each poll 0.12 s or more.
    assert 2 * len(probe.visible_ms) + 3 * len(probe.timed_out) <= len(probe.poll_ms)
    assert all(95 <= ms < 1900 for ms in probe.poll_ms)
    # The last poll that missed started after the first (at 0) and before the event showed
    # (0.2 s after the fake's 202); the answer that showed it came two reads later or more.
    assert len(probe.last_miss_ms) == len(probe.visible_ms)
    assert all(0 < miss < 200 for miss in probe.last_miss_ms)
    pairs = zip(probe.last_miss_ms, probe.visible_ms, strict=True)
    assert all(miss + 200 <= seen for miss, seen in pairs)
    assert len({batch[0]["event_id"] for batch in sent}) == fake.sends


def test_the_probe_stops_sending_when_told_but_finishes_its_polls() -> None:
    fake = FakePipeline(delay_s=0.3)
    profile = Profile(probe_interval_s=0.1, probe_poll_s=0.02, probe_timeout_s=10.0)
    stop = Stop(0.35)
    probe = _run_probe(fake, stop, profile)
    ended = time.perf_counter()
    assert fake.sends >= 2
    assert len(probe.visible_ms) == fake.sends  # the last probes were polled to the end
    assert probe.last_send is not None and probe.last_send <= stop.at  # no send after stop
    # Polled until seen (0.3 s), not until the 10 s timeout.
    assert ended - probe.last_send >= 0.3 and ended - stop.at < 5.0


def test_a_probe_cut_short_still_lists_what_it_sent_as_indeterminate() -> None:
    fake = FakePipeline(delay_s=0.0, answer_s=30.0)  # the gateway never answers in time
    profile = Profile(probe_interval_s=0.1, probe_poll_s=0.02, probe_timeout_s=1.0)
    probe, stop = Probe(), threading.Event()
    tenant = Tenant("bench-a-0", 1, "ingest", "read")

    async def cut_short() -> None:
        transport = httpx.MockTransport(fake)
        run = _probe("http://gw", "http://api", tenant, "bench-a", profile, stop, probe, transport)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run, 0.35)

    asyncio.run(cut_short())
    assert fake.sends >= 2
    assert list(probe.requests.values()) == [("indeterminate", "unanswered", False)] * fake.sends


def test_the_plot_takes_the_under_load_samples_too(tmp_path: Path) -> None:
    timeline = [(i / 10, 5.0 + i % 7, 100) for i in range(200)]
    idle = tmp_path / "idle.png"
    both = tmp_path / "both.png"
    plot(timeline, [800.0, 950.0, 1200.0], idle, "a run")
    plot(timeline, [800.0, 950.0, 1200.0], both, "a run", under_load_ms=[1100.0, 1900.0, 2500.0])
    data = both.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (720, 720)
    assert data != idle.read_bytes()  # the under-load bars are drawn
