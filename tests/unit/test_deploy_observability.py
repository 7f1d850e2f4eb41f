"""Dashboards, alerts and the processors' metrics endpoint."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

from ingest_gateway.metrics import GatewayMetrics
from pulseline import probe_server
from pulseline.ports import free_port
from storage.metrics import StorageMetrics
from stream_processors import deadletter, metrics
from tests.kafka_fixture import REPO

GRAFANA = REPO / "deploy" / "grafana"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]


def targets(kind: str) -> list[dict[str, Any]]:
    return [
        t
        for d in dashboards()
        for p in d["panels"]
        for t in p["targets"]
        if t["datasource"]["type"] == kind
    ]


def exported_names() -> set[str]:
    """Every sample name the services can export (counters as *_total, histograms' parts)."""
    names: set[str] = set()
    registries: list[CollectorRegistry] = [
        GatewayMetrics().registry,
        StorageMetrics().registry,
        REGISTRY,
    ]
    assert deadletter.DEAD_LETTERS and metrics.EVENTS  # both on the default registry
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names |= {f"{family.name}_{part}" for part in ("bucket", "sum", "count")}
            else:
                names.add(family.name)
    return names


def test_the_committed_dashboards_are_what_the_builder_writes() -> None:
    written = builder().render()
    committed = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == written, "run: .venv/bin/python deploy/grafana/build_dashboards.py"
    assert {d["uid"] for d in dashboards()} == {
        f"pulseline-{n}" for n in ("errors", "analytics", "performance", "monitors", "pipeline")
    }


def test_panels_use_the_provisioned_data_sources() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "pulseline.yml").read_text()
    )
    uids = {s["uid"] for s in provisioned["datasources"]}
    for d in dashboards():
        for p in d["panels"]:
            assert p["targets"], p["title"]
            assert {t["datasource"]["uid"] for t in p["targets"]} <= uids, p["title"]


def test_every_metric_in_dashboards_and_alerts_is_exported() -> None:
    exprs = [t["expr"] for t in targets("prometheus")]
    alerts = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs += [rule["expr"] for g in alerts["groups"] for rule in g["rules"]]
    used = {name for e in exprs for name in re.findall(r"\bpulseline_[a-z_]+", e)}
    assert used, "no Pulseline metric is shown"
    assert used <= exported_names(), used - exported_names()


MACROS = [
    (re.compile(r"\$__timeFilter\((\w+)\)"), r"\1 >= now() - INTERVAL 6 HOUR AND \1 <= now()"),
    (re.compile(r"\$__timeInterval\((\w+)\)"), r"toStartOfInterval(\1, INTERVAL 60 second)"),
    (re.compile(r"\$\{project\}"), "1"),
]


def test_every_clickhouse_query_runs_on_the_migrated_schema() -> None:
    """In chdb (a subprocess: one engine path per process), with Grafana's macros filled."""
    queries = [t["rawSql"] for t in targets("grafana-clickhouse-datasource")]
    queries += [
        d["templating"]["list"][0]["query"] for d in dashboards() if d["templating"]["list"]
    ]
    for pattern, replacement in MACROS:
        queries = [pattern.sub(replacement, q) for q in queries]
    assert not [q for q in queries if "$" in q], "a macro is left unexpanded"
    script = """
import json, sys
from chdb import session
from storage.migrate import discover
s = session.Session()
s.query("CREATE DATABASE IF NOT EXISTS pulseline")
for m in discover():
    for statement in m.statements("pulseline"):
        s.query(statement)
s.query(
    "INSERT INTO pulseline.events (project_id, kind, timestamp, event_id, received_at, "
    "attributes) VALUES (1, 'check_in', now(), generateUUIDv4(), now(), "
    "'{\\"monitor\\": \\"nightly\\", \\"status\\": \\"ok\\"}')"
)
for q in json.load(sys.stdin):
    s.query(q, "CSV")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]


# ---- the processors' endpoint -----------------------------------------------------------


@pytest.fixture
def endpoint() -> Any:
    health = probe_server.Health()
    server = probe_server.MetricsServer("127.0.0.1", free_port(), health)
    assert server.start()
    yield health, f"http://127.0.0.1:{server.port}"
    server.stop()


def test_the_endpoint_serves_metrics_including_dead_letters(endpoint: Any) -> None:
    _, url = endpoint
    deadletter.DEAD_LETTERS.labels("route_by_project", "BadEvent").inc()
    body = httpx.get(f"{url}/metrics").text
    assert (
        'pulseline_processor_dead_letters_total{reason="BadEvent",stage="route_by_project"}' in body
    )
    assert "pulseline_processor_events_total" in body
    assert httpx.get(f"{url}/nothing").status_code == 404


def test_ready_only_once_the_loop_ticks_and_unhealthy_when_it_stops(endpoint: Any) -> None:
    health, url = endpoint
    assert httpx.get(f"{url}/healthz").status_code == 200  # starting is not stuck
    assert httpx.get(f"{url}/readyz").status_code == 503
    health.beat(time.monotonic())
    assert httpx.get(f"{url}/readyz").status_code == 200
    health.last_beat -= probe_server.STALE_AFTER_S + 1
    assert httpx.get(f"{url}/healthz").status_code == 503
    assert httpx.get(f"{url}/readyz").status_code == 503


def test_a_taken_port_disables_the_endpoint_instead_of_crashing(endpoint: Any) -> None:
    _, url = endpoint
    port = int(url.rsplit(":", 1)[1])
    assert probe_server.MetricsServer("127.0.0.1", port, probe_server.Health()).start() is False


def lag_samples() -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for s in metrics.LAG.collect()[0].samples
        if s.labels["topic"].startswith("lagtest.")
    }


def test_lag_is_the_end_minus_the_next_offset_and_goes_with_the_partition() -> None:
    tracker = metrics.LagTracker()
    ends = {("lagtest.a", 0): 100, ("lagtest.a", 1): 50, ("lagtest.b", 0): None}
    tracker.update(ends, {("lagtest.a", 0): 90, ("lagtest.a", 1): 60})
    assert lag_samples() == {("lagtest.a", "0"): 10, ("lagtest.a", "1"): 0}
    assert metrics.ASSIGNED.labels("lagtest.a")._value.get() == 2
    tracker.update({("lagtest.a", 1): 70}, {("lagtest.a", 1): 65})
    assert lag_samples() == {("lagtest.a", "1"): 5}
    assert metrics.ASSIGNED.labels("lagtest.b")._value.get() == 0


def test_the_worker_app_builds_with_the_endpoint_and_the_sensor() -> None:
    from pulseline.settings import ProcessorSettings
    from stream_processors.app import build_app

    app = build_app(ProcessorSettings.from_env({"PULSELINE_TOPIC_PREFIX": "unit."}))
    sensors = [s for s in app.sensors if isinstance(s, metrics.AgentSensor)]
    assert len(sensors) == 1
    assert sensors[0].agent_of_topic["unit.ingest.pageview"] == "route"
    assert sensors[0].agent_of_topic["unit.ingest.metric"] == "route"
    assert sensors[0].agent_of_topic["unit.processors.incident_signals"] == "incident_book"
    assert any(s.__name__ == "Endpoint" for s in app._extra_services)


def test_a_topic_read_by_two_agents_is_refused_at_boot() -> None:
    import faust

    from pulseline.settings import ProcessorSettings

    app = faust.App("unit-two-readers", broker="kafka://127.0.0.1:1", web_enabled=False)
    topic = app.topic("unit.shared", value_serializer="raw")

    @app.agent(topic, name="first")
    async def first(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.agent(topic, name="second")
    async def second(stream: Any) -> None:
        async for _ in stream:
            pass

    with pytest.raises(RuntimeError, match=r"several read .*unit\.shared.*first.*second"):
        metrics.install(app, ProcessorSettings.from_env({}))
