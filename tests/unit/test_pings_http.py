"""The ping API over the gateway app, with ListProducer and an in-memory control plane."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from ingest_gateway.app import create_app
from ingest_gateway.producer import ListProducer
from pulseline.control.entities import EntityType, Monitor, Project
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore, ControlStoreError
from pulseline.keys import StaticKeyRing
from pulseline.schemas import Event
from pulseline.settings import GatewaySettings
from tests.unit.test_admin_api import MemoryStore

pytestmark = pytest.mark.anyio

PING_KEY = "pk_" + "a" * 20
BODY_LIMIT = 10_000  # Healthchecks' PING_BODY_LIMIT, below the gateway's default


class Control(MemoryStore):
    """MemoryStore with ControlStore's lifecycle, so create_app can start and stop it."""

    loaded = True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class World:
    def __init__(self, http: httpx.AsyncClient, control: Control, producer: ListProducer):
        self.http, self.control, self.producer = http, control, producer
        self.service = ControlService(control)

    async def project(self, slug: str = "shop", ping_key: str = PING_KEY) -> Project:
        made = await self.service.create(
            EntityType.PROJECT, {"name": slug, "slug": slug, "ping_key": ping_key}
        )
        assert isinstance(made, Project)
        return made

    async def monitor(self, project: Project, slug: str = "nightly", **extra: Any) -> Monitor:
        data = {
            "project_id": project.id,
            "name": slug,
            "slug": slug,
            "schedule": {"period_s": 3600},
            **extra,
        }
        made = await self.service.create(EntityType.MONITOR, data)
        assert isinstance(made, Monitor)
        return made

    def events(self) -> list[Event]:
        return [Event.model_validate_json(value) for _, _, value in self.producer.records]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = GatewaySettings.from_env(
        {}, topic_prefix="unit.", retry_after_s=7, ping_body_limit_bytes=BODY_LIMIT
    )
    control = Control()
    producer = ListProducer()
    app = create_app(settings, StaticKeyRing(), producer, cast(ControlStore, control))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield World(http, control, producer)


async def test_a_ping_by_uuid_answers_ok_after_producing_one_check_in(world: World) -> None:
    project = await world.project()
    monitor = await world.monitor(project)

    response = await world.http.get(f"/ping/{monitor.id}", headers={"User-Agent": "curl/8.5"})

    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["Ping-Body-Limit"] == str(BODY_LIMIT)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    [(topic, key, _)] = world.producer.records
    assert (topic, key) == ("unit.ingest.check_in", f"{project.id}:nightly".encode())
    [event] = world.events()
    assert event.kind == "check_in"
    assert event.project_id == project.id
    assert event.distinct_id is None
    assert event.attributes == {
        "monitor": "nightly",
        "monitor_id": monitor.id,
        "status": "ok",
        "output": "",
        "output_size": 0,
        "source": "ping",
        "method": "GET",
        "user_agent": "curl/8.5",
    }


@pytest.mark.parametrize(
    ("suffix", "status", "exit_code"),
    [
        ("/", "ok", None),
        ("/start", "start", None),
        ("/fail", "fail", None),
        ("/log", "log", None),
        ("/0", "ok", 0),
        ("/1", "fail", 1),
        ("/255", "fail", 255),
    ],
)
@pytest.mark.parametrize("by", ["uuid", "slug"])
async def test_every_suffix_sets_status_and_exit_code(
    world: World, by: str, suffix: str, status: str, exit_code: int | None
) -> None:
    monitor = await world.monitor(await world.project())
    base = f"/ping/{monitor.id}" if by == "uuid" else f"/ping/{PING_KEY}/nightly"
    if by == "slug" and suffix == "/":
        suffix = ""  # Healthchecks has no trailing-slash form for slugs

    response = await world.http.get(base + suffix)

    assert (response.status_code, response.text) == (200, "OK")
    [event] = world.events()
    assert event.attributes["status"] == status
    assert event.attributes.get("exit_code") == exit_code
    assert ("exit_code" in event.attributes) == (exit_code is not None)
    assert event.attributes["monitor_id"] == monitor.id


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
async def test_it_accepts_head_get_and_post(world: World, method: str) -> None:
    monitor = await world.monitor(await world.project())

    response = await world.http.request(method, f"/ping/{monitor.id}")

    assert response.status_code == 200
    assert response.text == ("" if method == "HEAD" else "OK")
    [event] = world.events()
    assert event.attributes["method"] == method


async def test_other_methods_are_refused(world: World) -> None:
    monitor = await world.monitor(await world.project())
    response = await world.http.put(f"/ping/{monitor.id}")
    assert response.status_code == 405
    assert world.producer.records == []


async def test_rid_is_recorded_as_the_run_id_of_start_and_finish(world: World) -> None:
    monitor = await world.monitor(await world.project())
    rid = str(uuid.uuid4())

    start = await world.http.get(f"/ping/{monitor.id}/start", params={"rid": rid})
    finish = await world.http.get(f"/ping/{monitor.id}", params={"rid": rid.upper()})

    assert start.status_code == finish.status_code == 200
    assert [(e.attributes["status"], e.attributes["run_id"]) for e in world.events()] == [
        ("start", rid),
        ("ok", rid),
    ]


@pytest.mark.parametrize("rid", ["nope", "", "1234"])
async def test_a_bad_rid_is_400_invalid_uuid_format(world: World, rid: str) -> None:
    monitor = await world.monitor(await world.project())
    response = await world.http.get(f"/ping/{monitor.id}/start", params={"rid": rid})
    assert (response.status_code, response.text) == (400, "invalid uuid format")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert world.producer.records == []


@pytest.mark.parametrize("by", ["uuid", "slug"])
async def test_an_exit_status_over_255_is_400_invalid_url_format(world: World, by: str) -> None:
    monitor = await world.monitor(await world.project())
    base = f"/ping/{monitor.id}" if by == "uuid" else f"/ping/{PING_KEY}/nightly"
    response = await world.http.get(f"{base}/256")
    assert (response.status_code, response.text) == (400, "invalid url format")
    assert world.producer.records == []


async def test_an_unknown_check_is_404_before_a_bad_exit_status(world: World) -> None:
    response = await world.http.get(f"/ping/{uuid.uuid4()}/256")
    assert (response.status_code, response.text) == (404, "not found")


async def test_a_post_body_is_the_output(world: World) -> None:
    monitor = await world.monitor(await world.project())
    response = await world.http.post(f"/ping/{monitor.id}/1", content=b"disk full\n")
    assert response.status_code == 200
    [event] = world.events()
    assert event.attributes["output"] == "disk full\n"
    assert event.attributes["output_size"] == 10
    assert event.attributes["status"] == "fail"


async def test_a_body_over_the_limit_keeps_its_head_and_full_size(world: World) -> None:
    monitor = await world.monitor(await world.project())
    body = b"x" * BODY_LIMIT + b"TAIL" * 1000

    response = await world.http.post(f"/ping/{monitor.id}/log", content=body)

    assert response.status_code == 200
    assert response.headers["Ping-Body-Limit"] == str(BODY_LIMIT)
    [event] = world.events()
    assert event.attributes["output"] == "x" * BODY_LIMIT
    assert event.attributes["output_size"] == len(body) == BODY_LIMIT + 4000


async def test_reported_duration_and_output_size_win_over_the_gateways(world: World) -> None:
    monitor = await world.monitor(await world.project())
    params = {"duration_ms": "4250.6", "output_size": "512000"}

    response = await world.http.post(f"/ping/{monitor.id}/0", params=params, content=b"tail\n")
    plain = await world.http.post(f"/ping/{monitor.id}/0", content=b"tail\n")

    assert response.status_code == plain.status_code == 200
    reported, measured = (e.attributes for e in world.events())
    assert (reported["duration_ms"], reported["output_size"]) == (4251, 512_000)
    assert reported["output"] == "tail\n"
    assert "duration_ms" not in measured
    assert measured["output_size"] == 5


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("duration_ms", "-1"),
        ("duration_ms", "1e3"),
        ("duration_ms", "NaN"),
        ("duration_ms", ""),
        ("output_size", "12.5"),
        ("output_size", "-3"),
        ("output_size", "9" * 16),
    ],
)
async def test_a_malformed_reported_figure_is_400_naming_it(
    world: World, param: str, value: str
) -> None:
    monitor = await world.monitor(await world.project())
    response = await world.http.get(f"/ping/{monitor.id}/0", params={param: value})
    assert (response.status_code, response.text) == (400, f"invalid {param}")
    assert world.producer.records == []


@pytest.mark.parametrize(
    "path",
    [
        f"/ping/{uuid.uuid4()}",
        "/ping/not-a-uuid",
        "/ping/",
        f"/ping/{str(uuid.uuid4()).upper()}",
        f"/ping/{PING_KEY}/nightly/",
        f"/ping/{PING_KEY}/missing",
        f"/ping/{'z' * 20}/nightly",
    ],
)
async def test_unknown_or_malformed_targets_are_404_not_found(world: World, path: str) -> None:
    await world.monitor(await world.project())
    response = await world.http.get(path)
    assert (response.status_code, response.text) == (404, "not found")
    assert world.producer.records == []


async def test_a_slug_is_looked_up_in_the_project_of_the_ping_key_only(world: World) -> None:
    mine = await world.project("mine", PING_KEY)
    other = await world.project("other", "pk_" + "b" * 20)
    await world.monitor(other, "backup")
    ours = await world.monitor(mine, "backup")

    response = await world.http.get(f"/ping/{PING_KEY}/backup")

    assert response.status_code == 200
    [event] = world.events()
    assert (event.project_id, event.attributes["monitor_id"]) == (mine.id, ours.id)


async def test_create_1_provisions_the_monitor_201_then_pings_are_200(world: World) -> None:
    project = await world.project()

    first = await world.http.post(f"/ping/{PING_KEY}/new-job/start?create=1", content=b"go")
    second = await world.http.get(f"/ping/{PING_KEY}/new-job?create=1")

    assert (first.status_code, first.text) == (201, "Created")
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert (second.status_code, second.text) == (200, "OK")
    [made] = world.control.view.monitors(project.id)
    assert (made.slug, made.name, made.grace_s) == ("new-job", "new-job", 3600)
    assert made.schedule.period_s == 86_400
    events = world.events()
    assert [e.attributes["status"] for e in events] == ["start", "ok"]
    assert {e.attributes["monitor_id"] for e in events} == {made.id}


async def test_create_1_with_an_unknown_ping_key_is_404(world: World) -> None:
    await world.project()
    response = await world.http.get(f"/ping/{'q' * 20}/job?create=1")
    assert (response.status_code, response.text) == (404, "not found")
    assert world.control.view.monitors() == []


async def test_create_1_refused_by_a_bad_rid_makes_no_monitor(world: World) -> None:
    await world.project()
    response = await world.http.get(f"/ping/{PING_KEY}/job?create=1&rid=bad")
    assert response.status_code == 400
    assert world.control.view.monitors() == []


async def test_create_1_with_a_slug_a_monitor_cannot_take_is_400(world: World) -> None:
    await world.project()
    response = await world.http.get(f"/ping/{PING_KEY}/Upper_Case?create=1")
    assert (response.status_code, response.text) == (400, "invalid slug")
    assert world.control.view.monitors() == []


async def test_create_1_answers_503_when_the_control_plane_cannot_write(world: World) -> None:
    await world.project()
    world.control.failure = ControlStoreError("down")
    response = await world.http.get(f"/ping/{PING_KEY}/job?create=1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"


async def test_a_slug_shared_by_two_monitors_is_409_ambiguous(world: World) -> None:
    project = await world.project()
    first = await world.monitor(project, "dup")
    # Two gateways racing on ?create=1 can both write one; the service would refuse it.
    twin = first.model_copy(update={"id": str(uuid.uuid4())})
    await world.control.put(twin)

    response = await world.http.get(f"/ping/{PING_KEY}/dup")

    assert (response.status_code, response.text) == (409, "ambiguous slug")
    assert world.producer.records == []


async def test_a_paused_monitor_still_records_the_ping(world: World) -> None:
    monitor = await world.monitor(await world.project(), paused=True)
    response = await world.http.get(f"/ping/{monitor.id}")
    assert (response.status_code, response.text) == (200, "OK")
    assert len(world.events()) == 1


async def test_it_answers_503_with_retry_after_when_kafka_does_not_ack(world: World) -> None:
    monitor = await world.monitor(await world.project())
    world.producer.failing = True

    response = await world.http.get(f"/ping/{monitor.id}")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error"] == "kafka_unavailable"


async def test_pings_are_counted_by_form_status_and_result(world: World) -> None:
    monitor = await world.monitor(await world.project())
    await world.http.get(f"/ping/{monitor.id}/fail")
    await world.http.get(f"/ping/{uuid.uuid4()}")
    world.producer.failing = True
    await world.http.get(f"/ping/{PING_KEY}/nightly/start")

    text = (await world.http.get("/metrics")).text

    assert 'pulseline_gateway_pings_total{form="uuid",result="ok",status="fail"} 1.0' in text
    assert 'pulseline_gateway_pings_total{form="uuid",result="not_found",status="ok"} 1.0' in text
    assert (
        'pulseline_gateway_pings_total{form="slug",result="kafka_unavailable",status="start"} 1.0'
        in text
    )


async def test_without_a_control_plane_there_are_no_ping_routes() -> None:
    settings = GatewaySettings.from_env({}, topic_prefix="unit.")
    app = create_app(settings, StaticKeyRing(), ListProducer())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get(f"/ping/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"  # the app's own 404, not Healthchecks'
