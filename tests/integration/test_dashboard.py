"""The dashboard's pages on the real ClickHouse engine (chdb), through the ASGI client.

Rows are the read API tests' seeded story (``test_read_api_derived.load``); the key ring is
a real ``ControlView`` fed control records, so the status page can resolve a slug.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pulseline.control.entities import EntityType
from pulseline.control.view import ControlView
from pulseline.keys import Scope, key_hash, new_key
from pulseline.settings import StorageSettings
from storage.api import create_app
from storage.client import Engine
from storage.dashboard.assets import load_assets
from storage.dashboard.routes import CHART_SCRIPTS
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from tests.integration.test_read_api_derived import load

pytestmark = pytest.mark.integration

READ = new_key(Scope.READ)
INGEST = new_key(Scope.INGEST)
NOW = datetime.now(UTC)


def control_view() -> ControlView:
    view = ControlView()
    records: list[tuple[EntityType, str, dict[str, Any]]] = [
        (EntityType.PROJECT, "1", {"id": 1, "name": "Acme", "slug": "acme", "ping_key": "p" * 20}),
        (
            EntityType.MONITOR,
            "m1",
            {
                "id": "m1",
                "project_id": 1,
                "name": "Nightly backup",
                "slug": "nightly",
                "schedule": {"cron": "0 3 * * *", "tz": "Europe/Berlin"},
                "tags": ["public"],
            },
        ),
    ]
    for i, (scope, raw) in enumerate(((Scope.READ, READ), (Scope.INGEST, INGEST))):
        key = {
            "id": f"k{i}",
            "project_id": 1,
            "scope": scope.value,
            "name": "key",
            "prefix": raw[:12],
            "hash": key_hash(raw),
            "created_at": NOW.isoformat(),
        }
        records.append((EntityType.API_KEY, f"k{i}", key))
    for offset, (kind, id_, data) in enumerate(records):
        value = {"type": kind.value, "id": id_, "data": data, "updated_at": NOW.isoformat()}
        view.apply(f"{kind.value}:{id_}".encode(), orjson.dumps(value), offset)
    return view


@pytest.fixture
def env(chdb_dir: Path) -> dict[str, str]:
    """Storage settings over the session's embedded engine; no broker is needed to read."""
    return {
        "PULSELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PULSELINE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
        "PULSELINE_CLICKHOUSE_DATABASE": f"t_{uuid.uuid4().hex[:10]}",
    }


@pytest.fixture
def client_call(env: dict[str, str]) -> Any:
    settings = StorageSettings.from_env(env)
    engine = Engine.open(settings)
    migrate(engine)
    load(engine)
    app = create_app(settings, engine, control_view(), StorageMetrics())

    def call(method: str, path: str, cookies: dict[str, str] | None = None, **kw: Any) -> Any:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://dash", cookies=cookies
            ) as client:
                return await client.request(method, path, **kw)

        return asyncio.run(go())

    return call


def signed_in(call: Any) -> dict[str, str]:
    response = call("POST", "/dashboard/login", data={"key": READ})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return {"pulseline_read_key": READ}


def test_pages_redirect_to_login_without_a_valid_key(client_call: Any) -> None:
    for cookies in (None, {"pulseline_read_key": "pl_read_nope"}, {"pulseline_read_key": INGEST}):
        response = client_call("GET", "/dashboard/crons", cookies=cookies)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"


def test_login_refuses_an_ingest_key_and_says_why(client_call: Any) -> None:
    response = client_call("POST", "/dashboard/login", data={"key": INGEST})
    assert response.status_code == 401 and "cannot read" in response.text
    assert "set-cookie" not in response.headers


def test_overview_shows_the_health_strip_timeline_and_anomalies(client_call: Any) -> None:
    html = client_call("GET", "/dashboard/", cookies=signed_in(client_call)).text
    strip = re.sub(r"\s+", " ", html)
    assert "<strong>2</strong> open incidents" in strip  # inc-miss and inc-late; inc-1 is acked
    assert "<strong>1</strong> up" in strip
    assert "incident inc-miss" in html and "/dashboard/incidents/inc-late" in html
    assert "4.5 sigma above the mean" in html
    assert 'hx-trigger="every 5s"' in html


def test_crons_list_and_detail_show_state_runs_and_next_runs(client_call: Any) -> None:
    cookies = signed_in(client_call)
    listing = client_call("GET", "/dashboard/crons", cookies=cookies).text
    assert "/dashboard/crons/m1" in listing and "Nightly" in listing
    assert listing.count('class="run run-') == 4  # r1, r-fail, r-lost, r-old
    detail = client_call("GET", "/dashboard/crons/m1?tz=monitor", cookies=cookies).text
    assert "boom" in detail and "Europe/Berlin" in detail
    assert detail.count("CET") + detail.count("CEST") >= 5  # the next runs, in monitor time
    assert "/ping/" + "p" * 20 + "/nightly" in detail
    missing = client_call("GET", "/dashboard/crons/m2", cookies=cookies)
    assert missing.status_code == 404  # project 2's monitor is not this key's


def test_issues_tabs_and_detail(client_call: Any) -> None:
    cookies = signed_in(client_call)
    unresolved = client_call("GET", "/dashboard/issues", cookies=cookies).text
    assert "KeyError fp1" in unresolved and "KeyError fp-old" not in unresolved
    resolved = client_call("GET", "/dashboard/issues?status=resolved", cookies=cookies).text
    assert "KeyError fp-old" in resolved
    detail = client_call("GET", "/dashboard/issues/fp1", cookies=cookies).text
    assert "First seen in release <strong>1.0</strong>" in detail
    assert "0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01" in detail


def test_incidents_list_filters_by_state_and_detail_merges_deliveries(client_call: Any) -> None:
    cookies = signed_in(client_call)
    acked = client_call("GET", "/dashboard/incidents?state=acked", cookies=cookies).text
    assert "incident inc-1" in acked and "inc-miss" not in acked
    detail = client_call("GET", "/dashboard/incidents/inc-1", cookies=cookies).text
    assert "Alert delivered" in detail and "Alert retrying" in detail and "Opened" in detail


def test_status_page_shows_public_monitor_states_without_script_or_key(client_call: Any) -> None:
    response = client_call("GET", "/status/acme")
    assert response.status_code == 200
    html = response.text
    assert "<script" not in html
    assert "Nightly backup" in html and "Up" in html and "All systems operational" in html
    assert "33.33 %" in html  # 7-day uptime: one ok of three finished runs
    assert client_call("GET", "/status/nobody").status_code == 404


def test_the_heaviest_page_stays_within_the_javascript_budget(client_call: Any) -> None:
    html = client_call("GET", "/dashboard/crons/m1", cookies=signed_in(client_call)).text
    referenced = re.findall(r'<script src="/dashboard/static/([^"]+)"', html)
    assert sorted(referenced) == sorted(CHART_SCRIPTS)
    assets = load_assets()
    total = sum(len(assets[name].gzipped) for name in referenced)
    assert total <= 60 * 1024, f"{total} bytes of gzipped JavaScript"
    served = client_call(
        "GET", f"/dashboard/static/{referenced[0]}", headers={"accept-encoding": "gzip"}
    )
    assert served.status_code == 200 and served.headers["content-encoding"] == "gzip"
