"""The SDK client against a stand-in gateway on loopback: batches, retries, drops, monitors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import pulseline.sdk as sdk
from pulseline.sdk import Client
from pulseline.sdk.testing import FakeGateway

pytestmark = pytest.mark.timeout(20)

KEY = "pl_ingest_test"


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as fake:
        yield fake


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close(0)


Make = Callable[..., Client]


@pytest.fixture
def make(gateway: FakeGateway, clients: list[Client]) -> Make:
    def build(**options: Any) -> Client:
        options = {"flush_interval": 60.0, "backoff_base": 0.01, "timeout": 2.0, **options}
        client = Client(gateway.url, key=KEY, **options)
        clients.append(client)
        return client

    return build


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


def test_events_go_in_batches_of_batch_size_without_waiting_and_the_rest_on_flush(
    gateway: FakeGateway, make: Make
) -> None:
    client = make(batch_size=10)

    sent = [client.track("e", {"n": i}) for i in range(25)]
    full = gateway.wait_for_events(20)
    before_flush = [len(r.events) for r in gateway.requests()]
    assert client.flush(5)

    assert before_flush == [10, 10]
    assert len(full) == 20
    assert [len(r.events) for r in gateway.requests()] == [10, 10, 5]
    assert ids(gateway.events()) == sent
    request = gateway.requests()[0]
    assert request.path == "/v1/events"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"].startswith("pulseline-python/")


def test_a_lone_event_goes_after_flush_interval(gateway: FakeGateway, make: Make) -> None:
    client = make(flush_interval=0.1)

    started = time.monotonic()
    event_id = client.capture_message("alone")
    events = gateway.wait_for_events(1, timeout=3)

    assert ids(events) == [event_id]
    assert 0.08 <= gateway.requests()[0].at - started < 2


def test_large_batches_are_gzipped_and_split_by_bytes(gateway: FakeGateway, make: Make) -> None:
    client = make(max_request_bytes=4000, compress_over_bytes=100)

    sent = [client.track("big", {"blob": "x" * 1500}) for _ in range(5)]
    assert client.flush(5)

    requests = gateway.requests()
    assert [len(r.events) for r in requests] == [2, 2, 1]
    assert {r.headers.get("content-encoding") for r in requests} == {"gzip"}
    assert all(len(r.raw) < 1000 for r in requests)
    assert ids(gateway.events()) == sent


def test_a_full_queue_drops_the_oldest_and_counts_the_drops(
    gateway: FakeGateway, make: Make
) -> None:
    client = make(max_queue_events=5, batch_size=100)

    sent = [client.track("e", {"n": i}) for i in range(8)]
    assert client.stats.dropped == 3
    assert client.flush(5)

    assert ids(gateway.events()) == sent[3:]
    stats = client.stats
    assert (stats.captured, stats.sent, stats.dropped, stats.queued) == (8, 5, 3, 0)


def test_retries_resend_the_same_events_with_the_same_ids(gateway: FakeGateway, make: Make) -> None:
    gateway.answer(503, retry_after="0")
    gateway.answer(500)
    gateway.answer(429, retry_after="0")
    client = make()

    sent = [client.capture_message(f"m{i}") for i in range(3)]
    assert client.flush(5)

    requests = gateway.requests()
    assert [r.status for r in requests] == [503, 500, 429, 202]
    assert all(ids(r.events) == sent for r in requests)
    assert all(r.raw == requests[0].raw for r in requests)
    assert (client.stats.retries, client.stats.sent) == (3, 3)


def test_retry_after_is_honoured_on_429_and_503(gateway: FakeGateway, make: Make) -> None:
    gateway.answer(429, retry_after="1")
    gateway.answer(503, retry_after="1")
    client = make(backoff_base=0.001)

    event_id = client.track("e")
    assert client.flush(6)

    at = [r.at for r in gateway.requests()]
    assert len(at) == 3
    assert 0.95 <= at[1] - at[0] < 3.0
    assert 0.95 <= at[2] - at[1] < 3.0
    assert ids(gateway.events()) == [event_id]


def test_without_retry_after_the_waits_grow(gateway: FakeGateway, make: Make) -> None:
    gateway.answer(503, times=3)
    client = make(backoff_base=0.1)

    client.track("e")
    assert client.flush(5)

    at = [r.at for r in gateway.requests()]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    # Attempt n waits between half and all of 0.1 * 2**n.
    assert 0.05 <= gaps[0] < 0.3
    assert 0.1 <= gaps[1] < 0.45
    assert 0.2 <= gaps[2] < 0.8


@pytest.mark.parametrize("status", [400, 401, 413])
def test_a_refused_batch_is_not_retried_and_is_logged_once(
    gateway: FakeGateway, make: Make, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    gateway.answer(status, times=2)
    client = make(batch_size=2)

    with caplog.at_level(logging.WARNING, logger="pulseline.sdk"):
        for i in range(4):
            client.track("e", {"n": i})
        assert client.flush(5)

    assert [r.status for r in gateway.requests()] == [status, status]
    assert (client.stats.rejected, client.stats.retries, client.stats.sent) == (4, 0, 0)
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert str(status) in refusals[0].getMessage()


def test_after_max_retries_the_batch_is_counted_failed(gateway: FakeGateway, make: Make) -> None:
    gateway.answer(503, retry_after="0", times=10)
    client = make(max_retries=2)

    client.track("e")
    client.track("e")
    assert client.flush(5)

    assert len(gateway.requests()) == 3
    assert (client.stats.failed, client.stats.retries, client.stats.sent) == (2, 2, 0)


def test_a_hung_request_times_out_and_is_retried(gateway: FakeGateway, make: Make) -> None:
    gateway.answer(503, hang=4.0)
    client = make(timeout=0.2)

    event_id = client.track("e")
    started = time.monotonic()
    assert client.flush(5)

    assert time.monotonic() - started < 3.0  # well before the hung answer would come
    assert ids(gateway.events()) == [event_id]
    assert client.stats.retries == 1


def test_close_gives_up_on_a_hung_gateway_in_bounded_time(gateway: FakeGateway, make: Make) -> None:
    gateway.answer(202, hang=10, times=5)
    client = make(timeout=10)
    client.track("e")
    client.flush(0.1)

    started = time.monotonic()
    assert client.close(0.3) is False

    assert time.monotonic() - started < 1.5  # not the 10 s the request would wait
    assert client.track("after close") is None


def test_an_unreachable_gateway_costs_the_app_nothing(make: Make, clients: list[Client]) -> None:
    client = Client("http://127.0.0.1:9", key=KEY, max_retries=1, backoff_base=0.01)
    clients.append(client)

    started = time.monotonic()
    event_ids = [client.capture_message(f"m{i}") for i in range(100)]
    capture_time = time.monotonic() - started
    assert client.flush(5)

    assert all(event_ids)
    assert capture_time < 0.5
    assert client.stats.failed == 100


def test_capture_calls_never_raise(gateway: FakeGateway, make: Make) -> None:
    client = make()
    circular: dict[str, Any] = {}
    circular["self"] = circular

    results = [
        client.metric("m", float("nan")),
        client.metric("m", "3"),  # type: ignore[arg-type]
        client.check_in("job", "finished"),
        client.capture_message("x", level="loud"),
        client.capture_exception("not an exception"),  # type: ignore[arg-type]
        client.capture_exception(),  # nothing being handled
        client.track("e", circular),
        client.pageview(""),
    ]

    assert results == [None] * len(results)
    assert client.stats.captured == 0


def test_a_capture_that_interrupts_a_capture_on_its_own_thread_does_not_deadlock(
    gateway: FakeGateway, make: Make
) -> None:
    client = make()
    outer = threading.Thread(target=lambda: client.track("outer"))

    # What a signal handler that captures sees when it lands inside a capture.
    with client._cond:
        inner = client.track("from a signal handler")
        outer.start()
    outer.join(5)
    assert client.flush(5)

    assert not outer.is_alive()
    assert inner is not None
    assert sorted(e["attributes"]["name"] for e in gateway.events()) == [
        "from a signal handler",
        "outer",
    ]


def test_odd_properties_are_sent_as_text(gateway: FakeGateway, make: Make) -> None:
    client = make()
    props = {"when": time.gmtime(0), "tags": {"a"}, "obj": object(), "text": "d\ud800"}

    client.track("odd", props)
    props["late"] = "changed after capture"
    assert client.flush(5)

    [event] = gateway.events()
    sent = event["attributes"]["properties"]
    assert sent["tags"] == ["a"]
    assert sent["obj"].startswith("<object object")
    assert sent["text"] == "d?"
    assert "late" not in sent


def test_capture_exception_sends_the_exception_being_handled(
    gateway: FakeGateway, make: Make
) -> None:
    client = make(release="1.4.2", environment="prod", distinct_id="svc")

    try:
        {"name": "x"}["user"]
    except KeyError:
        event_id = client.capture_exception(tags={"area": "auth"})
    assert client.flush(5)

    [event] = gateway.events()
    assert event["event_id"] == event_id
    assert (event["release"], event["environment"], event["distinct_id"]) == (
        "1.4.2",
        "prod",
        "svc",
    )
    [value] = event["attributes"]["exception"]
    assert (value["type"], value["value"]) == ("KeyError", "'user'")
    assert value["stacktrace"]["frames"][-1]["function"] == (
        "test_capture_exception_sends_the_exception_being_handled"
    )
    assert event["attributes"]["tags"] == {"area": "auth"}


def test_many_threads_capturing_at_once_each_arrive_exactly_once(
    gateway: FakeGateway, make: Make
) -> None:
    client = make(batch_size=50, flush_interval=0.01)
    threads, per_thread = 8, 100
    returned: list[list[str | None]] = [[] for _ in range(threads)]
    go = threading.Barrier(threads)

    def capture(n: int) -> None:
        go.wait()
        returned[n] = [client.track("t", {"thread": n, "i": i}) for i in range(per_thread)]

    workers = [threading.Thread(target=capture, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert client.flush(10)

    sent = [event_id for per in returned for event_id in per]
    arrived = ids(gateway.events())
    assert len(arrived) == threads * per_thread
    assert sorted(arrived) == sorted(sent)  # type: ignore[type-var]
    assert len(set(arrived)) == len(arrived)
    assert client.stats.sent == threads * per_thread
    for n in range(threads):
        mine = [
            e["attributes"]["properties"]["i"]
            for e in gateway.events()
            if e["attributes"]["properties"]["thread"] == n
        ]
        assert mine == list(range(per_thread))


def _check_ins(gateway: FakeGateway) -> list[dict[str, Any]]:
    return [e["attributes"] for e in gateway.events() if e["kind"] == "check_in"]


def test_the_monitor_context_manager_reports_start_and_success(
    gateway: FakeGateway, make: Make
) -> None:
    client = make()

    with client.monitor("nightly") as run:
        time.sleep(0.05)
    assert client.flush(5)

    start, end = _check_ins(gateway)
    assert (start["monitor"], start["status"], start["run_id"]) == ("nightly", "start", run.run_id)
    assert (end["monitor"], end["status"], end["run_id"]) == ("nightly", "ok", run.run_id)
    assert 50 <= end["duration_ms"] < 2000
    assert "error_type" not in end


def test_the_monitor_context_manager_reports_failure_with_the_exception_type(
    gateway: FakeGateway, make: Make
) -> None:
    client = make()

    with pytest.raises(ZeroDivisionError), client.monitor("nightly"):
        1 / 0  # noqa: B018
    assert client.flush(5)

    start, end = _check_ins(gateway)
    assert start["status"] == "start"
    assert end["status"] == "fail"
    assert end["run_id"] == start["run_id"]
    assert end["error_type"] == "ZeroDivisionError"
    assert end["output"] == "ZeroDivisionError: division by zero"
    assert end["duration_ms"] >= 0


def test_the_monitor_decorator_reports_each_call_as_its_own_run(
    gateway: FakeGateway, make: Make
) -> None:
    client = make()

    @client.monitor("job")
    def job(fail: bool) -> str:
        if fail:
            raise ValueError("bad input")
        return "done"

    assert job(False) == "done"
    with pytest.raises(ValueError, match="bad input"):
        job(True)
    assert client.flush(5)

    checks = _check_ins(gateway)
    assert [c["status"] for c in checks] == ["start", "ok", "start", "fail"]
    assert checks[0]["run_id"] == checks[1]["run_id"] != checks[2]["run_id"] == checks[3]["run_id"]
    assert checks[3]["error_type"] == "ValueError"
    assert job.__name__ == "job"


def test_the_monitor_decorator_wraps_coroutines(gateway: FakeGateway, make: Make) -> None:
    client = make()

    @client.monitor("async-job")
    async def job() -> int:
        await asyncio.sleep(0.01)
        raise TimeoutError

    with pytest.raises(TimeoutError):
        asyncio.run(job())
    assert client.flush(5)

    assert [(c["status"], c.get("error_type")) for c in _check_ins(gateway)] == [
        ("start", None),
        ("fail", "TimeoutError"),
    ]


def test_the_module_api_reports_to_the_client_init_made(gateway: FakeGateway) -> None:
    @sdk.monitor("early")  # decorated before init: reports to whichever client is current
    def early() -> None:
        pass

    assert sdk.capture_message("before init") is None
    early()
    try:
        client = sdk.init(gateway.url, key=KEY, flush_interval=60)
        assert sdk.get_client() is client
        early()
        sent = [
            sdk.capture_message("hello", "warning"),
            sdk.track("signup", {"plan": "pro"}, distinct_id="u1"),
            sdk.pageview("https://shop.test/p/1"),
            sdk.metric("queue.depth", 3),
            sdk.check_in("cron", "ok"),
        ]
        try:
            raise RuntimeError("module level")
        except RuntimeError:
            sent.append(sdk.capture_exception())
        assert sdk.flush(5)
    finally:
        assert sdk.close(2)

    kinds = [(e["kind"], e["attributes"].get("status")) for e in gateway.events()]
    assert kinds == [
        ("check_in", "start"),
        ("check_in", "ok"),
        ("error", None),
        ("event", None),
        ("pageview", None),
        ("metric", None),
        ("check_in", "ok"),
        ("error", None),
    ]
    assert ids(gateway.events())[2:] == sent
    assert sdk.get_client() is None
    assert sdk.track("after close") is None


def test_a_client_without_a_url_does_nothing() -> None:
    client = Client(None)

    assert client.capture_message("x") is None
    assert client.flush(0) is True
    assert client.enabled is False
