"""Each tile of the analytics and performance screens: its reads and what it shows.

A tile is an async function of the reads and the ``Ask`` (project, selection, window,
now) returning its template and context; the routes load each one on its own. Where the
selection has filters, a tile says which of them its numbers are *not* narrowed by:

- no filter: exact aggregates from the builders;
- session filters: figures folded from the window's latest sessions (``visits``), with a
  notice when the session cap was reached; ``page`` does not narrow them;
- ``page`` alone: page views and visitors of that page (its breakdown row); session
  figures stay unfiltered and say so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage import analytics_queries as aq
from storage.dashboard import traffic, visits, vitals
from storage.dashboard.analytics_data import AnalyticsReads
from storage.dashboard.data import Reads
from storage.dashboard.period import Period
from storage.dashboard.selection import LABELS, PAGE, SESSION_COLUMNS, Selection
from storage.dashboard.traffic import Totals

SCREEN = "/dashboard/analytics"
TOP = 10
PAGE_SCAN = 1000  # page breakdown rows searched for a filtered page
FUNNEL_WINDOW_S = 3600
VITALS_LIMIT = 500
SLOWEST = 20

Row = dict[str, Any]
Context = dict[str, Any]


@dataclass(frozen=True)
class Ask:
    project_id: int
    selection: Selection
    period: Period
    now: datetime


@dataclass(frozen=True)
class Source:
    analytics: AnalyticsReads
    derived: Reads


@dataclass(frozen=True)
class Board:
    """One breakdown table; clicking a row adds ``filter=value`` to the URL."""

    title: str
    filter: str
    unit: str
    rows: list[Row]
    unapplied: list[tuple[str, str]] = field(default_factory=list)
    capped: bool = False


Tile = Callable[[Source, Ask], Awaitable[tuple[str, Context]]]


def unapplied(selection: Selection, names: set[str]) -> list[tuple[str, str]]:
    """``(label, value)`` of the selection's filters among ``names``."""
    return [(LABELS[k], v) for k, v in selection.filters if k in names]


def board(
    ask: Ask, title: str, name: str, unit: str, rows: list[Row], count: str, **more: Any
) -> Board:
    active = dict(ask.selection.filters).get(name)
    shaped = [
        {
            "value": str(r["value"]),
            "count": int(r[count]),
            "visitors": int(r["visitors"]),
            "href": SCREEN + ask.selection.with_filter(name, str(r["value"])).query(),
            "active": active == str(r["value"]),
        }
        for r in rows
    ]
    return Board(title, name, unit, shaped, **more)


async def page_totals(src: Source, ask: Ask, start: datetime, end: datetime) -> Totals:
    """Page views and visitors of the filtered page; session figures unknown."""
    found = await src.analytics.breakdown(ask.project_id, start, end, "page", PAGE_SCAN)
    row = next((r for r in found if r["value"] == ask.selection.page), None)
    if row is None and len(found) >= PAGE_SCAN:
        return Totals(None, None, None, None, None)
    if row is None:
        return Totals(0, 0, None, None, None)
    return Totals(int(row["pageviews"]), int(row["visitors"]), None, None, None)


async def session_totals(
    src: Source, ask: Ask, start: datetime, end: datetime
) -> tuple[Totals, bool]:
    read = await src.analytics.sessions(ask.project_id, start, end)
    kept = visits.matching(read.rows, ask.selection.session_filters, start, end)
    return visits.totals(kept), read.capped


async def metrics(src: Source, ask: Ask) -> tuple[str, Context]:
    sel, per, p = ask.selection, ask.period, ask.project_id
    windows = ((per.start, per.end), per.previous)
    capped, note, skipped = False, None, []
    if sel.session_filters:
        (current, c1), (previous, c2) = [await session_totals(src, ask, *w) for w in windows]
        capped, skipped = c1 or c2, unapplied(sel, {PAGE})
        note = "Page views are the matching sessions' own counts."
    elif sel.page is not None:
        current, previous = [await page_totals(src, ask, *w) for w in windows]
        note = "Sessions, bounce rate and duration cannot be narrowed by page."
    else:
        current, previous = [
            traffic.totals(
                await src.analytics.series(p, *w, "day"), await src.analytics.visitors(p, *w)
            )
            for w in windows
        ]
    tiles = traffic.metrics(current, previous, per.words)
    return "partials/analytics_metrics.html", {
        "metrics": tiles,
        "note": note,
        "unapplied": skipped,
        "capped": capped,
    }


async def chart(src: Source, ask: Ask) -> tuple[str, Context]:
    sel, per, p = ask.selection, ask.period, ask.project_id
    if sel.session_filters:
        read = await src.analytics.sessions(p, per.start, per.end)
        kept = visits.matching(read.rows, sel.session_filters, per.start, per.end)
        points, capped = visits.series(kept, per.interval), read.capped
    else:
        points, capped = await src.analytics.series(p, per.start, per.end, per.interval), False
    incidents = await src.derived.incidents(p, None)
    anomalies = await src.derived.anomalies(p, per.start, per.end)
    marks = traffic.markers(incidents, anomalies, per.start, per.end)
    data = traffic.chart(points, per.start, per.end, per.interval)
    data["marks"] = [{"at": int(m.at.timestamp()), "kind": m.kind, "label": m.label} for m in marks]
    data["tz"] = per.tz
    return "partials/analytics_chart.html", {
        "data": data,
        "marks": marks,
        "unapplied": unapplied(sel, {PAGE} if sel.session_filters else set(LABELS)),
        "capped": capped,
    }


async def session_boards(src: Source, ask: Ask, specs: tuple[tuple[str, str], ...]) -> list[Board]:
    """Breakdowns of the window's sessions matching the session filters."""
    per = ask.period
    read = await src.analytics.sessions(ask.project_id, per.start, per.end)
    kept = visits.matching(read.rows, ask.selection.session_filters, per.start, per.end)
    skipped = unapplied(ask.selection, {PAGE})
    return [
        board(
            ask,
            title,
            name,
            "sessions",
            visits.top(kept, SESSION_COLUMNS[name], TOP),
            "sessions",
            unapplied=skipped,
            capped=read.capped,
        )
        for title, name in specs
    ]


async def aggregate_boards(
    src: Source, ask: Ask, specs: tuple[tuple[str, aq.Dimension], ...], unit: str
) -> list[Board]:
    """Exact top values from ``breakdown``; no filter narrows them."""
    per, count = ask.period, "pageviews" if unit == "page views" else "sessions"
    skipped = unapplied(ask.selection, set(LABELS))
    out = []
    for title, name in specs:
        found = await src.analytics.breakdown(ask.project_id, per.start, per.end, name, TOP)
        out.append(board(ask, title, name, unit, found, count, unapplied=skipped))
    return out


SOURCES: tuple[tuple[str, aq.Dimension], ...] = (
    ("Referrers", "referrer"),
    ("UTM sources", "utm_source"),
)
DEVICES: tuple[tuple[str, aq.Dimension], ...] = (
    ("Browsers", "browser"),
    ("Operating systems", "os"),
    ("Device types", "device"),
)


async def breakdowns(
    src: Source, ask: Ask, specs: tuple[tuple[str, aq.Dimension], ...], unit: str
) -> tuple[str, Context]:
    if ask.selection.session_filters:
        boards = await session_boards(src, ask, specs)
    else:
        boards = await aggregate_boards(src, ask, specs, unit)
    return "partials/analytics_boards.html", {"boards": boards}


async def sources(src: Source, ask: Ask) -> tuple[str, Context]:
    return await breakdowns(src, ask, SOURCES, "page views")


async def devices(src: Source, ask: Ask) -> tuple[str, Context]:
    return await breakdowns(src, ask, DEVICES, "sessions")


async def pages(src: Source, ask: Ask) -> tuple[str, Context]:
    """Top pages by page views (exact; ``page`` keeps its own row), then entry and exit
    pages from the window's sessions."""
    sel, per = ask.selection, ask.period
    limit = PAGE_SCAN if sel.page is not None else TOP
    found = await src.analytics.breakdown(ask.project_id, per.start, per.end, "page", limit)
    if sel.page is not None:
        found = [r for r in found if r["value"] == sel.page]
    skipped = unapplied(sel, set(SESSION_COLUMNS))
    top = board(ask, "Top pages", PAGE, "page views", found, "pageviews", unapplied=skipped)
    ends = (("Entry pages", "entry_page"), ("Exit pages", "exit_page"))
    return "partials/analytics_boards.html", {
        "boards": [top, *await session_boards(src, ask, ends)]
    }


async def funnel(src: Source, ask: Ask) -> tuple[str, Context]:
    steps = ask.selection.funnel_steps
    per = ask.period
    found = await src.analytics.funnel(ask.project_id, per.start, per.end, steps, FUNNEL_WINDOW_S)
    return "partials/analytics_funnel.html", {
        "steps": traffic.drop_offs(found),
        "window": traffic.duration(FUNNEL_WINDOW_S),
        "unapplied": unapplied(ask.selection, set(LABELS)),
    }


async def live(src: Source, ask: Ask) -> tuple[str, Context]:
    count = await src.analytics.live(ask.project_id, ask.now)
    window = traffic.duration(aq.LIVE_WINDOW / timedelta(seconds=1))
    return "partials/analytics_live.html", {"visitors": count, "window": window}


async def vitals_tile(src: Source, ask: Ask) -> tuple[str, Context]:
    per = ask.period
    found = await src.analytics.vitals(ask.project_id, per.start, per.end, VITALS_LIMIT)
    return "partials/performance_vitals.html", {
        "headlines": vitals.headlines(found),
        "pages": vitals.pages(found),
        "order": vitals.ORDER,
        "names": vitals.NAMES,
        "capped": len(found) >= VITALS_LIMIT,
    }


async def routes_tile(src: Source, ask: Ask) -> tuple[str, Context]:
    per = ask.period
    found = await src.analytics.slowest(ask.project_id, per.start, per.end, SLOWEST)
    return "partials/performance_routes.html", {"routes": found}


ANALYTICS: dict[str, Tile] = {
    "live": live,
    "metrics": metrics,
    "chart": chart,
    "sources": sources,
    "pages": pages,
    "devices": devices,
    "funnel": funnel,
}
PERFORMANCE: dict[str, Tile] = {"vitals": vitals_tile, "routes": routes_tile}
