"""Synthetic history for the query benchmark, generated inside ClickHouse. Pure SQL text.

Events go through the landing table ``events``, so the per-family materialized views fill
the family tables exactly as the sink's inserts do. The derived tables the processors
would write (sessions, issues, runs, incidents, anomalies) get rows of the same shape.

The mix, per 100 events: 40 page views, 10 custom events, 20 transactions, 10 web vitals,
10 metrics, 5 errors, 5 check-ins. Project 1 holds 80% of them, projects 2 and 3 10% each;
200,000 visitors, 50 pages, 30 routes, 10 metrics, 10 monitors, spread evenly over ``days``
ending at ``end``. Kind, project and visitor come from one hash of the event's number,
the attribute values from another, so they are independent.
"""

from __future__ import annotations

from datetime import datetime

VISITORS = 200_000
PROJECTS = (1, 2, 3)
MONITORS = 10

_KIND = (
    "multiIf(r < 40, 'pageview', r < 50, 'event', r < 70, 'transaction', r < 80, 'web_vital', "
    "r < 90, 'metric', r < 95, 'error', 'check_in')"
)
_ATTRIBUTES = (
    "multiIf("
    "kind = 'pageview', concat('{\"url\":\"https://shop.example/p/', toString(g % 50), "
    '\'?x=1","title":"P","referrer":"https://\', '
    "['google', 'news', 'github', 'hn', 'direct', 'x', 'bing', 'mail'][g % 8 + 1], "
    "'.example/\",\"utm_source\":\"', ['newsletter', 'ads', 'social', '', ''][g % 5 + 1], '\"}'), "
    "kind = 'event', concat('{\"name\":\"', ['signup', 'click', 'checkout', 'search'][g % 4 + 1], "
    "'\"}'), "
    "kind = 'transaction', concat('{\"name\":\"GET /api/r', toString(g % 30), "
    '\'","method":"GET","http_status":\', if(g % 50 = 0, \'500\', \'200\'), '
    "',\"duration_ms\":', toString(round(5 + (g % 1000) * (1 + g % 30) / 10, 1)), '}'), "
    "kind = 'web_vital', concat('{\"name\":\"', ['LCP', 'INP', 'CLS', 'FCP', 'TTFB'][g % 5 + 1], "
    '\'","value":\', toString(g % 4000), \',"path":"/p/\', toString(g % 50), \'"}\'), '
    "kind = 'metric', concat('{\"name\":\"db.m', toString(g % 10), '\",\"value\":', "
    'toString(g % 997), \',"type":"gauge"}\'), '
    'kind = \'error\', concat(\'{"level":"error","exception":[{"type":"E\', '
    'toString(g % 20), \'","value":"failed id \', toString(g), \'"}]}\'), '
    f'concat(\'{{"monitor":"job-\', toString(g % {MONITORS}), \'","status":"\', '
    "if(g % 20 = 0, 'fail', 'ok'), '\",\"duration_ms\":', toString(1000 + g % 5000), '}'))"
)


def events_sql(db: str, first: int, count: int, total: int, end: datetime, days: int) -> str:
    """Events ``first`` .. ``first + count - 1`` of ``total`` (numbered through the whole span)."""
    span_ms = days * 86_400_000
    start_ms = int(end.timestamp() * 1000) - span_ms
    return (
        f"INSERT INTO {db}.events (project_id, kind, timestamp, event_id, received_at, "
        "distinct_id, session_id, release, environment, attributes, _topic, _partition, _offset) "
        "SELECT project_id, kind, ts, generateUUIDv4(number), ts, visitor, "
        "concat(visitor, '-', toString(intDiv(toUnixTimestamp(ts), 1800))), "
        "'1.4.2', 'production', attributes, concat('ingest.', kind), 0, number FROM ("
        "SELECT number, cityHash64(number) AS h, cityHash64(number, 2) AS g, "
        f"h % 100 AS r, {_KIND} AS kind, "
        "if(intDiv(h, 100) % 10 < 8, 1, 2 + intDiv(h, 1000) % 2) AS project_id, "
        f"fromUnixTimestamp64Milli(toInt64({start_ms} + intDiv(number * {span_ms}, {total}))) "
        "AS ts, "
        f"concat('v-', toString(intDiv(h, 10000) % {VISITORS})) AS visitor, "
        f"{_ATTRIBUTES} AS attributes "
        f"FROM numbers({first}, {count}))"
    )


def sessions_sql(db: str, count: int, end: datetime, days: int) -> str:
    span_s = days * 86_400
    start_s = int(end.timestamp()) - span_s
    return (
        f"INSERT INTO {db}.sessions SELECT project_id, concat('s-', toString(number)), "
        "concat('v-', toString(h % 200000)), started, started + toIntervalSecond(duration), "
        "concat('/p/', toString(h % 50)), concat('/p/', toString(intDiv(h, 50) % 50)), "
        "1 + h % 6, h % 3, duration, h % 6 = 0, "
        "['https://google.example/', 'https://news.example/', ''][h % 3 + 1], "
        "['newsletter', 'ads', ''][h % 3 + 1], ['Chrome', 'Firefox', 'Safari', 'Edge'][h % 4 + 1], "
        "['Windows', 'macOS', 'Linux', 'iOS', 'Android'][h % 5 + 1], "
        "['desktop', 'mobile', 'tablet'][h % 3 + 1], true, 1 FROM ("
        "SELECT number, cityHash64(number, 7) AS h, "
        "if(h % 10 < 8, 1, 2 + intDiv(h, 10) % 2) AS project_id, "
        f"fromUnixTimestamp64Milli(toInt64(({start_s} + intDiv(number * {span_s}, {count})) "
        "* 1000)) AS started, h % 1800 AS duration "
        f"FROM numbers({count}))"
    )


def derived_sql(db: str, end: datetime, days: int) -> list[str]:
    """Issues, runs, monitor states, incidents and anomalies for every project."""
    end_s = int(end.timestamp())
    start_s = end_s - days * 86_400
    runs = days * 24
    return [
        f"INSERT INTO {db}.issues SELECT p, concat('fp-', toString(number)), "
        "concat('E', toString(number % 20), ': failed id <int>'), 'app.py in handle', 'error', "
        "['unresolved', 'resolved', 'ignored'][number % 3 + 1], "
        f"toDateTime64({start_s} + number * 60, 3, 'UTC'), "
        f"toDateTime64({end_s} - number * 60, 3, 'UTC'), "
        "1 + number % 500, number % 90, '1.4.0', '1.4.2', 'stack', 1 "
        "FROM numbers(2000) ARRAY JOIN [1, 2, 3] AS p",
        f"INSERT INTO {db}.runs SELECT p, concat('m', toString(m)), concat('job-', toString(m)), "
        f"concat('r', toString(number)), toDateTime64({start_s} + number * 3600, 3, 'UTC'), "
        f"toDateTime64({start_s} + number * 3600, 3, 'UTC'), "
        f"toDateTime64({start_s} + number * 3600 + 60, 3, 'UTC'), 60000 + number % 997, "
        "if(number % 25 = 0, 'fail', 'success'), if(number % 25 = 0, 1, 0), 1024, '', 1 "
        f"FROM numbers({runs}) ARRAY JOIN [1, 2, 3] AS p ARRAY JOIN range({MONITORS}) AS m",
        f"INSERT INTO {db}.monitor_states SELECT p, concat('m', toString(m)), "
        "concat('job-', toString(m)), ['up', 'late', 'down'][m % 3 + 1], "
        f"toDateTime64({end_s} - 600, 3, 'UTC'), toDateTime64({end_s} + 3000, 3, 'UTC'), 1 "
        f"FROM numbers(1) ARRAY JOIN [1, 2, 3] AS p ARRAY JOIN range({MONITORS}) AS m",
        f"INSERT INTO {db}.incidents SELECT p, concat('inc-', toString(number)), "
        "['monitor_missed', 'error_spike', 'duration_anomaly'][number % 3 + 1], 'warning', "
        "['open', 'acked', 'resolved'][number % 3 + 1], concat('k', toString(number)), 'title', "
        "'explanation', '[]', '', [], 1, "
        f"toDateTime64({start_s} + number * 3600, 3, 'UTC'), "
        f"toDateTime64({start_s} + number * 3600 + 60, 3, 'UTC'), NULL, '', 1 "
        "FROM numbers(500) ARRAY JOIN [1, 2, 3] AS p",
        f"INSERT INTO {db}.anomalies SELECT p, toDateTime64({start_s} + number * 600, 3, 'UTC'), "
        "concat('transaction:GET /api/r', toString(number % 30)), 'transaction', "
        "concat('GET /api/r', toString(number % 30)), 'duration', 4000, 3.4, "
        "'took 4.0 s, 3.4 sigma above the mean', toString(number) "
        "FROM numbers(5000) ARRAY JOIN [1, 2, 3] AS p",
    ]
