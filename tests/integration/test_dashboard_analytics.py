"""The web analytics and performance screens on the real ClickHouse engine (chdb).

One seeded story for the module, read through the dashboard's own routes with a fixed
clock. Project 1, current 24 h (before ``NOW``):

- page views: ``/`` 5 (u1 x3, u2, u3), ``/pricing`` 3 (u1 x2, u2), ``/docs`` 1 (u4, from
  news); u1 signs up after ``/pricing``; 9 views, 4 visitors; u1's last view is 1 min ago;
- sessions: s1 u1 Firefox/Linux 120 s, s2 u2 Chrome/Mac 60 s, s3 u3 Chrome/Android bounce,
  s4 u4 Chrome/Android bounce from news: 4 sessions, 50% bounce, 45 s on average.

Previous 24 h: 6 views by u1 and u5, sessions s5 u1 Firefox 30 s and s6 u5 Chrome 10 s.
Project 2 has its own page, browser, vital and route, which project 1 must never see.
Events go in twice (a replay), so every count also proves FINAL keeps them single.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.settings import StorageSettings
from storage import rows
from storage.client import Engine
from storage.dashboard.assets import load_assets
from storage.dashboard.routes import CHART_SCRIPTS, dashboard_router
from storage.migrate import migrate
from tests.integration.test_read_api_analytics import event, insert, view

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=30, microsecond=0)
KEY_1, KEY_2 = new_key(Scope.READ), new_key(Scope.READ)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def visit(sid: str, who: str, started: str, project: int = 1, **over: Any) -> dict[str, Any]:
    return {
        "project_id": project,
        "session_id": sid,
        "distinct_id": who,
        "started_at": started,
        "last_seen": started,
        "entry_page": "/",
        "exit_page": "/",
        "pageviews": 1,
        "events": 0,
        "duration_s": 0.0,
        "bounce": True,
        "referrer": None,
        "utm_source": None,
        "browser": "Chrome",
        "os": "Android",
        "device_type": "mobile",
        "closed": True,
        "version": 1,
        **over,
    }


def events() -> list[dict[str, Any]]:
    return [
        view("u1", "/", ago(minutes=180)),
        view("u1", "/pricing", ago(minutes=179)),
        event("event", "u1", ago(minutes=178), name="signup"),
        view("u1", "/", ago(minutes=120)),
        view("u1", "/pricing", ago(minutes=119)),
        view("u1", "/", ago(minutes=1)),
        view("u2", "/", ago(minutes=60)),
        view("u2", "/pricing", ago(minutes=59)),
        view("u3", "/", ago(minutes=30)),
        view("u4", "/docs", ago(minutes=10), utm_source="news", referrer="https://news.test/"),
        *[view("u1", "/", ago(hours=h)) for h in (30, 29, 28)],
        view("u5", "/", ago(hours=27)),
        *[view("u5", "/about", ago(hours=h)) for h in (26, 25)],
        *[
            event("web_vital", "u1", ago(minutes=50 + i), name="LCP", value=v, path="/")
            for i, v in enumerate((2000, 2400, 3000, 3500, 5000))
        ],
        event("web_vital", "u1", ago(minutes=40), name="CLS", value=0.05, path="/"),
        event("web_vital", "u2", ago(minutes=40), name="INP", value=600, path="/pricing"),
        *[
            event(
                "transaction",
                "u1",
                ago(minutes=20 + i),
                route="GET /a",
                duration_ms=d,
                http_status=500 if d == 50 else 200,
            )
            for i, d in enumerate((10, 20, 30, 40, 50))
        ],
        *[
            event("transaction", "u1", ago(minutes=i), route="GET /b", duration_ms=1000)
            for i in (5, 6)
        ],
        view("p2-user", "/secret", ago(minutes=15), project=2),
        event("web_vital", "p2-user", ago(minutes=15), 2, name="LCP", value=9999, path="/secret"),
        event("transaction", "p2-user", ago(minutes=15), 2, route="GET /p2", duration_ms=7),
    ]


def sessions() -> list[dict[str, Any]]:
    return [
        visit("s1", "u1", ago(minutes=180), browser="Firefox", os="Linux", device_type="desktop",
              pageviews=5, duration_s=120.0, bounce=False, exit_page="/pricing"),
        visit("s2", "u2", ago(minutes=60), os="Mac", device_type="desktop", pageviews=2,
              duration_s=60.0, bounce=False, exit_page="/pricing"),
        visit("s3", "u3", ago(minutes=30)),
        visit("s4", "u4", ago(minutes=10), entry_page="/docs", exit_page="/docs",
              referrer="https://news.test/", utm_source="news"),
        visit("s5", "u1", ago(hours=30), browser="Firefox", os="Linux", device_type="desktop",
              pageviews=3, duration_s=30.0, bounce=False),
        visit("s6", "u5", ago(hours=27), pageviews=3, duration_s=10.0, bounce=False),
        visit("p2", "p2-user", ago(minutes=15), project=2, browser="Vivaldi", entry_page="/secret"),
    ]  # fmt: skip


def incident() -> dict[str, Any]:
    return {
        "id": "inc-checkout",
        "project_id": 1,
        "kind": "error_spike",
        "severity": "warning",
        "state": "open",
        "dedup_key": "spike:checkout",
        "title": "Checkout errors spiking",
        "explanation": "why",
        "links": {},
        "opened_at": ago(hours=2),
        "updated_at": ago(hours=2),
        "version": 1,
    }


def anomaly() -> dict[str, Any]:
    return {
        "project_id": 1,
        "series": "1|pageview.count|/pricing",
        "rule": "zscore",
        "value": 90.0,
        "score": 4.5,
        "explanation": "4.5 sigma above the mean",
        "at": ago(hours=5),
        "event_id": "ev-1",
    }


@pytest.fixture(scope="module")
def app(chdb_dir: Path) -> FastAPI:
    env = {
        "PULSELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PULSELINE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
        "PULSELINE_CLICKHOUSE_DATABASE": f"t_{uuid.uuid4().hex[:10]}",
    }
    engine = Engine.open(StorageSettings.from_env(env))
    migrate(engine)
    seeded = events()
    for _ in range(2):  # the second time is a replay
        insert(engine, rows.EVENTS, seeded)
    insert(engine, rows.SESSIONS, sessions())
    insert(engine, rows.INCIDENTS, [incident()])
    insert(engine, rows.ANOMALIES, [anomaly()])
    keyring = StaticKeyRing()
    keyring.add(KEY_1, ApiKey(1, Scope.READ))
    keyring.add(KEY_2, ApiKey(2, Scope.READ))
    app = FastAPI()
    app.include_router(dashboard_router(engine, keyring, clock=lambda: NOW))
    return app


def get(app: FastAPI, path: str, key: str | None = KEY_1, **headers: str) -> httpx.Response:
    cookies = {"pulseline_read_key": key} if key else None

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://dash", cookies=cookies
        ) as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def tile(app: FastAPI, name: str, query: str = "", key: str = KEY_1) -> str:
    response = get(app, f"/dashboard/analytics/tiles/{name}{query}", key)
    assert response.status_code == 200, response.text
    return response.text


def board(html: str, name: str) -> list[tuple[str, int]]:
    """``(value, count)`` rows of the breakdown table whose rows filter by ``name``."""
    table = re.search(rf'data-board="{name}">(.*?)</table>', html, re.S)
    assert table, f"no {name} board"
    found = re.findall(
        r'<a href="[^"]*"[^>]*>([^<]*)</a></td>\s*<td class="num" data-count>([\d,]+)',
        table.group(1),
    )
    return [(value, int(count.replace(",", ""))) for value, count in found]  # fmt: skip


def metric(html: str, name: str) -> tuple[str, str]:
    """``(value, change)`` of one top metric, whitespace collapsed."""
    block = re.search(rf'data-metric="{name}">(.*?)</div>', html, re.S)
    assert block, f"no metric {name}"
    value = re.search(r'class="big">([^<]*)<', block.group(1))
    change = re.search(r'class="change[^"]*">(.*?)</span>\s*$', block.group(1), re.S)
    assert value and change
    text = re.sub(r"<[^>]+>|[▲▼]", "", change.group(1))
    return value.group(1), re.sub(r"\s+", " ", text).strip()


def test_pages_card_counts_each_seeded_page_and_entry_and_exit(app: FastAPI) -> None:
    html = tile(app, "pages")
    assert board(html, "page") == [("/", 5), ("/pricing", 3), ("/docs", 1)]
    assert board(html, "entry_page") == [("/", 3), ("/docs", 1)]
    assert board(html, "exit_page") == [("/pricing", 2), ("/", 1), ("/docs", 1)]


def test_top_metrics_compare_with_the_previous_period(app: FastAPI) -> None:
    html = tile(app, "metrics")
    assert metric(html, "pageviews") == ("9", "+50% vs previous 24 h")
    assert metric(html, "visitors") == ("4", "+100% vs previous 24 h")
    assert metric(html, "sessions") == ("4", "+100% vs previous 24 h")
    assert metric(html, "bounce_rate") == ("50.0%", "+50.0 pp vs previous 24 h")
    assert metric(html, "avg_duration_s") == ("45 s", "+125% vs previous 24 h")
    assert 'class="change bad"' in html  # the bounce rate rose


def test_a_session_filter_in_the_url_narrows_every_session_figure(app: FastAPI) -> None:
    chrome = "?browser=Chrome"
    metrics = tile(app, "metrics", chrome)
    assert metric(metrics, "sessions") == ("3", "+200% vs previous 24 h")  # s2-s4 vs s6
    assert metric(metrics, "pageviews") == ("4", "+33% vs previous 24 h")  # their own counts
    devices = tile(app, "devices", chrome)
    assert board(devices, "browser") == [("Chrome", 3)]
    assert board(devices, "os") == [("Android", 2), ("Mac", 1)]
    pages = tile(app, "pages", chrome)
    assert board(pages, "entry_page") == [("/", 2), ("/docs", 1)]
    assert board(pages, "page") == [("/", 5), ("/pricing", 3), ("/docs", 1)]
    assert "Not narrowed by Browser = <q>Chrome</q>" in pages  # page views have no browser
    unfiltered = tile(app, "devices")
    assert board(unfiltered, "os") == [("Android", 2), ("Linux", 1), ("Mac", 1)]


def test_a_page_filter_narrows_page_views_and_says_what_it_cannot(app: FastAPI) -> None:
    query = "?page=%2Fpricing"
    assert board(tile(app, "pages", query), "page") == [("/pricing", 3)]
    metrics = tile(app, "metrics", query)
    assert metric(metrics, "pageviews") == ("3", "none in previous 24 h")
    assert metric(metrics, "visitors") == ("2", "none in previous 24 h")
    assert metric(metrics, "sessions")[0] == "—"
    assert "cannot be narrowed by page" in metrics


def test_breakdown_rows_add_their_filter_and_keep_the_rest_of_the_url(app: FastAPI) -> None:
    html = tile(app, "devices", "?range=7d&tz=Europe%2FBerlin")
    assert 'href="/dashboard/analytics?range=7d&amp;tz=Europe%2FBerlin&amp;browser=Chrome"' in html
    sources = tile(app, "sources")
    assert board(sources, "utm_source") == [("(none)", 8), ("news", 1)]


def test_the_screen_keeps_range_zone_and_filters_in_the_url(app: FastAPI) -> None:
    html = get(app, "/dashboard/analytics?range=7d&tz=Europe%2FBerlin&browser=Chrome").text
    query = "?range=7d&amp;tz=Europe%2FBerlin&amp;browser=Chrome"
    for name in ("live", "metrics", "chart", "sources", "pages", "devices"):
        assert f'hx-get="/dashboard/analytics/tiles/{name}{query}"' in html
    assert 'hx-trigger="load, every 10s, retry"' in html and 'hx-trigger="load, retry"' in html
    assert 'value="Europe/Berlin"' in html and ("CET" in html or "CEST" in html)
    assert 'class="chip" href="/dashboard/analytics?range=7d&amp;tz=Europe%2FBerlin"' in html
    assert 'href="/dashboard/analytics?range=24h&amp;tz=Europe%2FBerlin&amp;browser=Chrome"' in html
    assert ">hour</a>" in html and ">minute</a>" not in html  # 7 days allow hour and day only
    unknown = get(app, "/dashboard/analytics?tz=Mars%2FOlympus").text
    assert "Unknown time zone" in unknown and 'value="UTC"' in unknown


def test_chart_has_one_point_per_bucket_and_incident_and_anomaly_markers(app: FastAPI) -> None:
    html = tile(app, "chart", "?interval=minute")
    found = re.search(r'<script type="application/json">(.*?)</script>', html, re.S)
    assert found
    data = orjson.loads(found.group(1))
    assert len(data["x"]) == 24 * 60 + 1  # NOW is mid-minute: the first minute is partial
    assert sum(data["pageviews"]) == 9 and sum(data["sessions"]) == 4
    assert [m["kind"] for m in data["marks"]] == ["anomaly", "incident"]
    assert "Checkout errors spiking" in html and "/dashboard/incidents/inc-checkout" in html
    hourly = orjson.loads(re.findall(r">(\{.*?)</script>", tile(app, "chart"), re.S)[0])
    assert len(hourly["x"]) == 25 and sum(hourly["visitors"]) >= 4


def test_funnel_shows_each_step_and_its_drop_off(app: FastAPI) -> None:
    html = re.sub(r"\s+", " ", tile(app, "funnel", "?funnel=/,/pricing,signup"))
    cells = re.findall(r'<td class="num">([^<]*)</td>', html)
    assert cells == ["3", "100.0%", "—", "2", "66.7%", "1 (33.3%)", "1", "33.3%", "1 (50.0%)"]


def test_realtime_counts_visitors_of_the_last_five_minutes(app: FastAPI) -> None:
    html = tile(app, "live")
    assert "<strong>1</strong> visitor in the last 5 min" in html


def test_performance_rates_vitals_and_ranks_slow_routes(app: FastAPI) -> None:
    page = get(app, "/dashboard/performance?range=7d&browser=Chrome&funnel=/,/a").text
    assert 'hx-get="/dashboard/performance/tiles/vitals?range=7d"' in page  # no filters here
    vitals = get(app, "/dashboard/performance/tiles/vitals").text
    lcp = re.search(r'class="tile vital ([^"]*)" data-vital="LCP">(.*?)</div>', vitals, re.S)
    assert lcp and lcp.group(1) == "rating-needs-improvement"
    assert "3,500 ms" in lcp.group(2) and "Needs improvement" in lcp.group(2)
    assert 'class="tile vital rating-poor" data-vital="INP"' in vitals
    assert 'class="tile vital rating-good" data-vital="CLS"' in vitals
    assert 'class="tile vital " data-vital="FCP"' in vitals and "No samples" in vitals
    assert '<a href="/dashboard/analytics?page=/pricing"' in vitals
    routes = re.sub(r"\s+", " ", get(app, "/dashboard/performance/tiles/routes").text)
    assert routes.index("GET /b") < routes.index("GET /a")  # slowest p95 first
    a = routes[routes.index("GET /a") :]
    assert re.findall(r'<td class="num[^"]*">([^<]*)</td>', a)[:6] == [
        "30 ms",
        "48 ms",
        "50 ms",
        "5",
        "0.0035/min",
        "20.0%",
    ]


def test_another_projects_key_sees_none_of_the_data(app: FastAPI) -> None:
    week = "?range=30d&funnel=/,/pricing"
    theirs = [tile(app, name, week, KEY_2) for name in ("metrics", "chart", "sources", "pages")]
    theirs += [tile(app, name, week, KEY_2) for name in ("devices", "funnel", "live")]
    for name in ("vitals", "routes"):
        theirs.append(get(app, f"/dashboard/performance/tiles/{name}{week}", KEY_2).text)
    seen = "\n".join(theirs)
    for secret in ('/pricing"', "/docs", "Firefox", "news", "GET /a", "3,500", "Checkout"):
        assert secret not in seen, secret
    assert "/secret" in seen and "Vivaldi" in seen and "9,999 ms" in seen and "GET /p2" in seen
    mine = tile(app, "pages", week) + tile(app, "devices", week)
    assert "/secret" not in mine and "Vivaldi" not in mine


def test_tiles_answer_an_error_state_and_ask_htmx_to_sign_in_again(app: FastAPI) -> None:
    broken = get(app, "/dashboard/analytics/tiles/funnel")  # no steps given
    assert broken.status_code == 400 and broken.headers["x-tile-error"] == "400"
    assert "a funnel has 2 to" in broken.text and "data-retry" in broken.text
    assert get(app, "/dashboard/analytics/tiles/nothing").status_code == 404
    expired = get(app, "/dashboard/analytics/tiles/metrics", None, **{"HX-Request": "true"})
    assert expired.status_code == 401 and expired.headers["hx-redirect"] == "/dashboard/login"
    page = get(app, "/dashboard/analytics", None)
    assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"


@pytest.mark.parametrize("path", ["/dashboard/analytics", "/dashboard/performance"])
def test_the_new_screens_stay_within_the_javascript_budget(app: FastAPI, path: str) -> None:
    html = get(app, path).text
    referenced = re.findall(r'<script src="/dashboard/static/([^"]+)"', html)
    assert sorted(referenced) == sorted(CHART_SCRIPTS)
    assets = load_assets()
    total = sum(len(assets[name].gzipped) for name in referenced)
    assert total <= 60 * 1024, f"{total} bytes of gzipped JavaScript"
    assert 'href="/dashboard/analytics"' in html and 'href="/dashboard/performance"' in html
