"""Writes the provisioned Grafana dashboards (``dashboards/*.json``) from this one file.

    .venv/bin/python deploy/grafana/build_dashboards.py

Edit here, not the JSON: tests/unit/test_deploy_observability.py checks that the JSON is
what this file writes, runs every ClickHouse query against the migrated schema and checks
that every Prometheus expression names a metric a service exports.

Event counts use ``uniqExact(event_id)``: a replayed row stays in ``events`` until a merge
collapses it, and a count must not see it twice. Attribute names the panels read (the SDK
convention): error ``type``/``message``; transaction ``name``/``duration_ms``; web_vital
``name``/``value``; pageview ``url``; event ``name``; check_in ``monitor``/``status``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "pulseline-clickhouse"}
PROMETHEUS = {"type": "prometheus", "uid": "pulseline-prometheus"}
TIME_SERIES, TABLE = 0, 1  # the ClickHouse plugin's query formats
DB = "pulseline"

Panel = dict[str, Any]


def sql(text: str, fmt: int = TIME_SERIES, ref: str = "A") -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": CLICKHOUSE,
        "editorType": "sql",
        "format": fmt,
        "queryType": "timeseries" if fmt == TIME_SERIES else "table",
        "rawSql": " ".join(text.split()),
    }


def promql(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}


def panel(title: str, kind: str, targets: list[dict[str, Any]], unit: str = "short") -> Panel:
    source = targets[0]["datasource"]
    return {
        "title": title,
        "type": kind,
        "datasource": source,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }


def events(kind: str, extra: str = "") -> str:
    """The WHERE clause of a family's events in the chosen project and time range."""
    where = f"kind = '{kind}' AND project_id = ${{project}} AND $__timeFilter(timestamp)"
    return f"FROM {DB}.events WHERE {where} {extra}"


def per_minute(title: str, kind: str) -> Panel:
    return panel(
        title,
        "timeseries",
        [
            sql(
                f"SELECT $__timeInterval(timestamp) AS time, uniqExact(event_id) AS events "
                f"{events(kind)} GROUP BY time ORDER BY time"
            )
        ],
    )


def attr(name: str) -> str:
    return f"JSONExtractString(attributes, '{name}')"


def number(name: str) -> str:
    return f"JSONExtractFloat(attributes, '{name}')"


ERRORS = [
    per_minute("Errors", "error"),
    panel(
        "Errors by release",
        "timeseries",
        [
            sql(
                "SELECT $__timeInterval(timestamp) AS time, release, uniqExact(event_id) AS errors "
                f"{events('error')} GROUP BY time, release ORDER BY time"
            )
        ],
    ),
    panel(
        "Top errors",
        "table",
        [
            sql(
                f"SELECT {attr('type')} AS type, {attr('message')} AS message, "
                "uniqExact(event_id) AS events, uniq(distinct_id) AS users, "
                "min(timestamp) AS first_seen, max(timestamp) AS last_seen "
                f"{events('error')} GROUP BY type, message ORDER BY events DESC LIMIT 50",
                TABLE,
            )
        ],
    ),
]

ANALYTICS = [
    per_minute("Page views", "pageview"),
    panel(
        "Unique visitors",
        "stat",
        [sql(f"SELECT uniq(distinct_id) AS visitors {events('pageview')}", TABLE)],
    ),
    panel(
        "Top pages",
        "table",
        [
            sql(
                f"SELECT {attr('url')} AS url, uniqExact(event_id) AS views, "
                f"uniq(distinct_id) AS visitors {events('pageview')} "
                "GROUP BY url ORDER BY views DESC LIMIT 50",
                TABLE,
            )
        ],
    ),
    panel(
        "Product events",
        "table",
        [
            sql(
                f"SELECT {attr('name')} AS event, uniqExact(event_id) AS events, "
                f"uniq(distinct_id) AS users {events('event')} "
                "GROUP BY event ORDER BY events DESC LIMIT 50",
                TABLE,
            )
        ],
    ),
    panel(
        "Events per family (counted by the processors)",
        "timeseries",
        [
            sql(
                f"SELECT minute AS time, kind, max(count) AS events FROM {DB}.project_counts "
                "WHERE project_id = ${project} AND $__timeFilter(minute) "
                "GROUP BY time, kind ORDER BY time"
            )
        ],
    ),
]

PERFORMANCE = [
    panel(
        "Transaction duration",
        "timeseries",
        [
            sql(
                "SELECT $__timeInterval(timestamp) AS time, "
                f"quantile(0.5)({number('duration_ms')}) AS p50, "
                f"quantile(0.95)({number('duration_ms')}) AS p95, "
                f"quantile(0.99)({number('duration_ms')}) AS p99 "
                f"{events('transaction')} GROUP BY time ORDER BY time"
            )
        ],
        unit="ms",
    ),
    panel(
        "Slowest transactions",
        "table",
        [
            sql(
                f"SELECT {attr('name')} AS transaction, uniqExact(event_id) AS events, "
                f"quantile(0.95)({number('duration_ms')}) AS p95_ms "
                f"{events('transaction')} GROUP BY transaction ORDER BY p95_ms DESC LIMIT 50",
                TABLE,
            )
        ],
    ),
    panel(
        "Web vitals (p75)",
        "timeseries",
        [
            sql(
                f"SELECT $__timeInterval(timestamp) AS time, {attr('name')} AS vital, "
                f"quantile(0.75)({number('value')}) AS p75 "
                f"{events('web_vital')} GROUP BY time, vital ORDER BY time"
            )
        ],
    ),
]

MONITORS = [
    panel(
        "Monitors",
        "table",
        [
            sql(
                f"SELECT {attr('monitor')} AS monitor, "
                f"argMax({attr('status')}, timestamp) AS last_status, "
                "max(timestamp) AS last_check_in, uniqExact(event_id) AS check_ins, "
                f"uniqExactIf(event_id, {attr('status')} = 'error') AS failures "
                f"{events('check_in')} GROUP BY monitor ORDER BY monitor",
                TABLE,
            )
        ],
    ),
    panel(
        "Check-ins by status",
        "timeseries",
        [
            sql(
                f"SELECT $__timeInterval(timestamp) AS time, {attr('status')} AS status, "
                f"uniqExact(event_id) AS check_ins {events('check_in')} "
                "GROUP BY time, status ORDER BY time"
            )
        ],
    ),
]


def rate(metric: str, by: str, legend: str) -> dict[str, Any]:
    return promql(f"sum by ({by}) (rate({metric}[1m]))", legend)


def quantile(q: float, metric: str, by: str, legend: str) -> dict[str, Any]:
    return promql(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[5m])))", legend)


PIPELINE = [
    panel(
        "Services up",
        "stat",
        [promql('up{job=~"gateway|processors|storage"}', "{{job}} {{instance}}")],
    ),
    panel(
        "Gateway: events accepted and rejected",
        "timeseries",
        [
            rate("pulseline_gateway_events_accepted_total", "kind", "accepted {{kind}}"),
            {
                **rate("pulseline_gateway_events_rejected_total", "reason", "rejected {{reason}}"),
                "refId": "B",
            },
        ],
        unit="ops",
    ),
    panel(
        "Gateway: Kafka hand-off p99",
        "timeseries",
        [
            promql(
                "histogram_quantile(0.99, sum by (le) "
                "(rate(pulseline_gateway_produce_seconds_bucket[5m])))",
                "p99",
            )
        ],
        unit="s",
    ),
    panel(
        "Processors: events per agent",
        "timeseries",
        [rate("pulseline_processor_events_total", "agent", "{{agent}}")],
        unit="ops",
    ),
    panel(
        "Processors: time per event p99",
        "timeseries",
        [quantile(0.99, "pulseline_processor_event_seconds", "agent", "{{agent}}")],
        unit="s",
    ),
    panel(
        "Consumer lag",
        "timeseries",
        [
            promql("sum by (topic) (pulseline_processor_consumer_lag)", "processors {{topic}}"),
            {
                **promql("sum by (topic) (pulseline_sink_consumer_lag)", "sink {{topic}}"),
                "refId": "B",
            },
        ],
    ),
    panel(
        "Sink: rows inserted",
        "timeseries",
        [rate("pulseline_sink_rows_total", "table", "{{table}}")],
        unit="ops",
    ),
    panel(
        "Sink: insert latency p95",
        "timeseries",
        [quantile(0.95, "pulseline_sink_insert_seconds", "table", "{{table}}")],
        unit="s",
    ),
    panel(
        "Dead letters (per 5 min)",
        "timeseries",
        [
            promql(
                "sum by (stage, reason) (increase(pulseline_processor_dead_letters_total[5m]))",
                "{{stage}}: {{reason}}",
            ),
            {
                **promql(
                    "sum by (reason) (increase(pulseline_sink_dead_letters_total[5m]))",
                    "sink: {{reason}}",
                ),
                "refId": "B",
            },
        ],
    ),
    panel(
        "Insert failures and rebalances (per 15 min)",
        "timeseries",
        [
            promql("sum(increase(pulseline_sink_insert_failures_total[15m]))", "insert failures"),
            {
                **promql("sum(increase(pulseline_processor_rebalances_total[15m]))", "rebalances"),
                "refId": "B",
            },
        ],
    ),
]

PROJECT_VARIABLE = {
    "name": "project",
    "label": "Project",
    "type": "query",
    "datasource": CLICKHOUSE,
    "query": f"SELECT DISTINCT project_id FROM {DB}.project_counts ORDER BY project_id",
    "definition": f"SELECT DISTINCT project_id FROM {DB}.project_counts ORDER BY project_id",
    "refresh": 2,
    "current": {"text": "1", "value": "1"},
}

DASHBOARDS: dict[str, tuple[str, list[Panel], bool]] = {
    "errors": ("Pulseline · Errors", ERRORS, True),
    "analytics": ("Pulseline · Product analytics", ANALYTICS, True),
    "performance": ("Pulseline · Performance", PERFORMANCE, True),
    "monitors": ("Pulseline · Cron monitors", MONITORS, True),
    "pipeline": ("Pulseline · Pipeline health", PIPELINE, False),
}


def dashboard(uid: str, title: str, panels: list[Panel], per_project: bool) -> dict[str, Any]:
    laid_out = []
    for i, p in enumerate(panels):
        width = 24 if p["type"] == "table" else 12
        laid_out.append({**p, "id": i + 1, "gridPos": {"h": 8, "w": width, "x": 0, "y": i * 8}})
    return {
        "uid": f"pulseline-{uid}",
        "title": title,
        "tags": ["pulseline"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [PROJECT_VARIABLE] if per_project else []},
        "panels": laid_out,
    }


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, *spec), indent=2) + "\n"
        for uid, spec in DASHBOARDS.items()
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
