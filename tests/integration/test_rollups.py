"""The page-view rollups (migration 0007) and the analytics reads over them, on chdb.

The read API counts page views on ``pageviews`` and visitors from the rollups' sets for
the whole minutes (hours) of a range, from ``pageviews`` for its partial ends. These
tests hold both against ``uniqExact`` over the family table, including after a replay
with other batch boundaries, which a count kept in a rollup would double.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import analytics_queries as aq
from storage.client import Engine
from tests.integration.test_family_tables import NOW, engine, insert, row, rows_of, scalar

pytestmark = pytest.mark.integration
__all__ = ["engine"]  # the fixture

HOUR = NOW.replace(minute=0, second=0) - timedelta(hours=3)
PAGES = ("/", "/pricing", "/docs")


def pageview(when: datetime, visitor: str, page: str, project: int = 1) -> list[Any]:
    r = row(project, "pageview", {"url": f"https://s.test{page}", "referrer": "https://g.test/"})
    r[2] = r[4] = when
    r[5] = visitor
    return r


def traffic() -> list[list[Any]]:
    """90 page views over 3 hours: 9 visitors, each on one page, every 2 minutes."""
    return [
        pageview(HOUR + timedelta(minutes=2 * i, seconds=7), f"v{i % 9}", PAGES[i % 3])
        for i in range(90)
    ]


def answer(engine: Engine, sql: aq.Sql) -> list[tuple[Any, ...]]:
    text, params = sql
    return list(engine.client.query(text, parameters=params).result_rows)


def exact_series(engine: Engine, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    return rows_of(
        engine,
        "SELECT toStartOfHour(timestamp) AS b, count(), uniqExact(distinct_id) "
        "FROM {db}.pageviews FINAL WHERE project_id = 1 AND kind = 'pageview' "
        f"AND timestamp >= '{since:%Y-%m-%d %H:%M:%S}' AND timestamp < '{until:%Y-%m-%d %H:%M:%S}' "
        "GROUP BY b ORDER BY b",
    )


def test_the_views_fill_a_visitor_set_per_minute_and_per_page_hour(engine: Engine) -> None:
    insert(engine, traffic(), "t1")
    minutes = scalar(engine, "SELECT count() FROM {db}.pageviews_1m FINAL WHERE project_id = 1")
    assert minutes == 90
    per_page = rows_of(
        engine,
        "SELECT value, uniqCombined64Merge(visitors) FROM {db}.pageview_dimensions_1h "
        "WHERE project_id = 1 AND dimension = 'page' GROUP BY value ORDER BY value",
    )
    assert per_page == [("/", 3), ("/docs", 3), ("/pricing", 3)]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (timedelta(0), timedelta(hours=3)),  # whole hours: all from the rollups
        (timedelta(minutes=5, seconds=30), timedelta(hours=2, minutes=41, seconds=3)),
        (timedelta(minutes=70, seconds=5), timedelta(minutes=70, seconds=50)),  # < 1 minute
    ],
)
def test_series_and_page_breakdown_match_exact_counts_at_any_range(
    engine: Engine, start: timedelta, end: timedelta
) -> None:
    insert(engine, traffic(), "t1")
    since, until = HOUR + start, HOUR + end
    assert answer(engine, aq.pageview_series(engine.database, 1, since, until, "hour")) == (
        exact_series(engine, since, until)
    )
    pages = answer(engine, aq.breakdown(engine.database, 1, since, until, "page", 10))
    exact = rows_of(
        engine,
        "SELECT page, count() AS n, uniqExact(distinct_id) FROM {db}.pageviews FINAL "
        "WHERE project_id = 1 AND kind = 'pageview' "
        f"AND timestamp >= '{since:%Y-%m-%d %H:%M:%S}' AND timestamp < '{until:%Y-%m-%d %H:%M:%S}' "
        "GROUP BY page ORDER BY n DESC, page",
    )
    assert pages == exact
    (totals,) = answer(engine, aq.pageview_totals(engine.database, 1, since, until))
    assert totals == (
        sum(n for _, n, _ in exact),
        len({r[5] for r in traffic() if since <= r[2] < until}),
    )


def test_a_replay_with_other_batch_boundaries_changes_no_answer(engine: Engine) -> None:
    views = traffic()
    insert(engine, views, "once")
    since, until = HOUR, HOUR + timedelta(hours=3)
    series = answer(engine, aq.pageview_series(engine.database, 1, since, until, "hour"))
    pages = answer(engine, aq.breakdown(engine.database, 1, since, until, "page", 10))
    insert(engine, views[:40], "replay-a")  # other tokens: the engine keeps these rows
    insert(engine, views[40:], "replay-b")
    assert scalar(engine, "SELECT count() FROM {db}.events") == 180
    assert answer(engine, aq.pageview_series(engine.database, 1, since, until, "hour")) == series
    assert answer(engine, aq.breakdown(engine.database, 1, since, until, "page", 10)) == pages
    assert sum(n for _, n, _ in series) == 90


def test_running_the_backfill_again_adds_no_visitor(engine: Engine) -> None:
    insert(engine, traffic(), "t1")
    since, until = HOUR, HOUR + timedelta(hours=3)
    before = answer(engine, aq.breakdown(engine.database, 1, since, until, "page", 10))
    sql = (Path(aq.__file__).parent / "migrations" / "0007_rollups.sql").read_text()
    backfills = [s for s in sql.split(";") if "INSERT INTO" in s]
    assert len(backfills) == 2
    for statement in backfills:
        body = statement[statement.index("INSERT INTO") :]
        engine.client.command(body.replace("{db}", engine.database))
    assert answer(engine, aq.breakdown(engine.database, 1, since, until, "page", 10)) == before


def test_another_projects_page_views_stay_out(engine: Engine) -> None:
    insert(engine, [*traffic(), pageview(HOUR + timedelta(minutes=3), "x", "/", project=2)], "t")
    since, until = HOUR, HOUR + timedelta(hours=3)
    series = answer(engine, aq.pageview_series(engine.database, 2, since, until, "hour"))
    assert [(n, v) for _, n, v in series] == [(1, 1)]
