"""``pulseline status``: scrapes real HTTP endpoints; a service that is down is shown so."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pulseline.cli import main
from pulseline.commands.status import Service, parse, render, row, scrape_all
from pulseline.ports import free_port

SINK_METRICS = [
    """# TYPE pulseline_sink_rows_total counter
pulseline_sink_rows_total{table="events"} 100.0
pulseline_sink_rows_total{table="project_counts"} 20.0
# TYPE pulseline_sink_consumer_lag gauge
pulseline_sink_consumer_lag{topic="ingest.event",partition="0"} 7.0
pulseline_sink_consumer_lag{topic="ingest.event",partition="1"} 5.0
# TYPE pulseline_sink_dead_letters_total counter
pulseline_sink_dead_letters_total{reason="invalid row"} 3.0
""",
    """# TYPE pulseline_sink_rows_total counter
pulseline_sink_rows_total{table="events"} 400.0
pulseline_sink_rows_total{table="project_counts"} 20.0
# TYPE pulseline_sink_consumer_lag gauge
pulseline_sink_consumer_lag{topic="ingest.event",partition="0"} 0.0
# TYPE pulseline_sink_dead_letters_total counter
pulseline_sink_dead_letters_total{reason="invalid row"} 4.0
""",
]


@pytest.fixture
def sink_url() -> Iterator[str]:
    """Serves the first metrics text, then the second one on every later scrape."""
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = SINK_METRICS[min(served[0], 1)].encode()
            served[0] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def storage(url: str) -> Service:
    return Service(
        "storage",
        url,
        "pulseline_sink_rows_total",
        errors=("pulseline_sink_insert_failures_total",),
        dead=("pulseline_sink_dead_letters_total",),
        lag="pulseline_sink_consumer_lag",
    )


def test_samples_are_summed_over_their_labels() -> None:
    sample = parse(SINK_METRICS[0])
    assert sample["pulseline_sink_rows_total"] == 120
    assert sample["pulseline_sink_consumer_lag"] == 12


def test_a_rate_is_the_difference_over_the_interval_and_never_negative() -> None:
    svc = storage("x")
    before, after = parse(SINK_METRICS[0]), parse(SINK_METRICS[1])
    assert row(svc, before, after, 2.0) == ["storage", "up", "150.0", "0", "4", "0"]
    assert row(svc, after, before, 2.0)[2] == "0.0"  # counters reset by a restart


def test_it_renders_up_and_down_services_side_by_side(sink_url: str) -> None:
    targets = [storage(sink_url), storage(f"http://127.0.0.1:{free_port()}/metrics")]
    targets[1] = Service("gateway", targets[1].url, "pulseline_gateway_events_accepted_total")
    before = scrape_all(targets)
    after = (before[0] + 1.0, scrape_all(targets)[1])
    lines = render(targets, before, after).splitlines()
    assert lines[0].split() == ["SERVICE", "STATE", "RATE/S", "ERRORS", "DEAD", "LETTERS", "LAG"]
    assert lines[1].split() == ["storage", "up", "300.0", "0", "4", "0"]
    assert lines[2].startswith("gateway") and "down (ConnectError)" in lines[2]


def test_once_prints_one_snapshot_and_fails_when_a_service_is_down(
    sink_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSELINE_GATEWAY_PORT", str(free_port()))
    monkeypatch.setenv("PULSELINE_PROCESSORS_WEB_PORT", str(free_port()))
    code = main(["status", "--once", "--interval", "0.1", "--storage-url", sink_url])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(out) == 4
    assert out[1].startswith("gateway") and "down" in out[1]
    assert out[2].startswith("processors") and "down" in out[2]
    assert out[3].split()[:2] == ["storage", "up"]


def test_once_succeeds_when_every_service_answers(
    sink_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = ["--gateway-url", sink_url, "--processors-url", sink_url, "--storage-url", sink_url]
    assert main(["status", "--once", "--interval", "0.1", *urls]) == 0
    assert "down" not in capsys.readouterr().out
