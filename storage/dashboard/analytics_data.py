"""The analytics screens' reads: the analytics builders, run as the read API runs them.

No SQL is written here: statements come from ``storage.analytics_queries`` (with its
``QUERY_SETTINGS`` time limit) and ``storage.derived_queries.sessions``; rows are shaped
by ``storage.analytics_shape`` like the API's. A query ClickHouse stops raises as is;
the tile that asked turns it into an error state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage import analytics_queries as aq
from storage import analytics_shape as shape
from storage import derived_queries as q
from storage.client import Engine

SESSION_CAP = 5000
# A session started in a window may be seen after it ends; read that much further.
SESSION_SLACK = timedelta(hours=6)

Row = dict[str, Any]


@dataclass(frozen=True)
class Sessions:
    rows: list[Row]
    capped: bool  # the pager returned SESSION_CAP rows: older sessions were not read


class AnalyticsReads:
    def __init__(self, engine: Engine, session_cap: int = SESSION_CAP) -> None:
        self.engine, self.db, self.session_cap = engine, engine.database, session_cap

    async def rows(self, sql: aq.Sql) -> list[Row]:
        return await self.engine.rows(*sql, settings=aq.QUERY_SETTINGS)

    async def series(
        self, project_id: int, start: datetime, end: datetime, interval: aq.Interval
    ) -> list[Row]:
        """Merged page-view and session points per bucket (``analytics_shape``)."""
        views = await self.rows(aq.pageview_series(self.db, project_id, start, end, interval))
        visits = await self.rows(aq.session_series(self.db, project_id, start, end, interval))
        return shape.merge_series(views, visits)

    async def visitors(self, project_id: int, start: datetime, end: datetime) -> int:
        """Distinct visitors with a page view in the window (not the sum of the buckets')."""
        found = await self.rows(aq.pageview_totals(self.db, project_id, start, end))
        return int(found[0]["visitors"]) if found else 0

    async def breakdown(
        self, project_id: int, start: datetime, end: datetime, by: aq.Dimension, limit: int
    ) -> list[Row]:
        return await self.rows(aq.breakdown(self.db, project_id, start, end, by, limit))

    async def funnel(
        self, project_id: int, start: datetime, end: datetime, steps: list[str], window_s: int
    ) -> list[Row]:
        found = await self.rows(aq.funnel(self.db, project_id, start, end, steps, window_s))
        return aq.funnel_steps(steps, shape.funnel_levels(found))

    async def live(self, project_id: int, now: datetime) -> int:
        found = await self.rows(aq.live_visitors(self.db, project_id, now))
        return int(found[0]["visitors"]) if found else 0

    async def sessions(self, project_id: int, start: datetime, end: datetime) -> Sessions:
        """The latest sessions last seen in the window (plus ``SESSION_SLACK``), newest first;
        ``visits.matching`` keeps those that started in it."""
        page = q.Page(q.SESSION_PAGE, self.session_cap)
        sql = q.sessions(self.db, project_id, page, None, start, end + SESSION_SLACK)
        found = await self.rows(sql)
        return Sessions(found, len(found) >= self.session_cap)

    async def vitals(
        self, project_id: int, start: datetime, end: datetime, limit: int
    ) -> list[Row]:
        return await self.rows(aq.web_vitals(self.db, project_id, start, end, limit))

    async def slowest(
        self, project_id: int, start: datetime, end: datetime, limit: int
    ) -> list[Row]:
        found = await self.rows(aq.routes(self.db, project_id, start, end, limit, "p95"))
        return [aq.route_json(r, start, end) for r in found]
