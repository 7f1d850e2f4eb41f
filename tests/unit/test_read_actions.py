"""Actions of the read API with in-memory twins of the tables and the producer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pulseline.keys import Scope
from pulseline.records.incidents import IncidentSignal
from pulseline.records.issues import IssueCommand
from storage.actions_api import Unavailable, actions_router
from storage.read_common import ApiError, ProjectKey

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Tables:
    """Project 1 has incident inc-1 (dedup key spike:1) and issue fp1."""

    async def incident_dedup_key(self, project_id: int, incident_id: str) -> str | None:
        return "spike:1" if (project_id, incident_id) == (1, "inc-1") else None

    async def issue_exists(self, project_id: int, fingerprint: str) -> bool:
        return (project_id, fingerprint) == (1, "fp1")


class MemoryPublisher:
    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        if self.down:
            raise Unavailable("broker unreachable")
        self.sent.append((topic, key, value))


def reader(request: Request) -> ProjectKey:
    return ProjectKey(int(request.headers["x-project"]), Scope.READ)


def call(publisher: MemoryPublisher | None, path: str, project: int = 1) -> httpx.Response:
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code}, status_code=exc.status)

    app.include_router(actions_router(reader, Tables(), publisher, "p.", clock=lambda: NOW))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, headers={"x-project": str(project)})

    return asyncio.run(go())


@pytest.mark.parametrize("action", ["ack", "resolve"])
def test_an_incident_action_sends_a_signal_keyed_by_its_dedup_key(action: str) -> None:
    publisher = MemoryPublisher()
    response = call(publisher, f"/v1/incidents/inc-1/{action}")
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "action": action, "incident_id": "inc-1"}
    ((topic, key, value),) = publisher.sent
    assert (topic, key) == ("p.processors.incident_signals", b"spike:1")
    signal = IncidentSignal.model_validate_json(value)
    assert (signal.action, signal.dedup_key, signal.at, signal.project_id) == (
        action,
        "spike:1",
        NOW,
        1,
    )


@pytest.mark.parametrize("action", ["resolve", "ignore", "unresolve"])
def test_an_issue_action_sends_a_command_keyed_by_project_and_fingerprint(action: str) -> None:
    publisher = MemoryPublisher()
    assert call(publisher, f"/v1/issues/fp1/{action}").status_code == 202
    ((topic, key, value),) = publisher.sent
    assert (topic, key) == ("p.processors.issue_commands", b"1:fp1")
    command = IssueCommand.model_validate_json(value)
    assert (command.action, command.project_id, command.fingerprint, command.at) == (
        action,
        1,
        "fp1",
        NOW,
    )
    assert orjson.loads(value)["schema_version"] == 1


@pytest.mark.parametrize(
    ("path", "project"),
    [
        ("/v1/incidents/inc-1/ack", 2),
        ("/v1/incidents/nope/resolve", 1),
        ("/v1/issues/fp1/ignore", 2),
        ("/v1/issues/nope/resolve", 1),
    ],
)
def test_an_unknown_or_foreign_id_is_404_and_sends_nothing(path: str, project: int) -> None:
    publisher = MemoryPublisher()
    response = call(publisher, path, project)
    assert response.status_code == 404 and response.json() == {"error": "not_found"}
    assert publisher.sent == []


@pytest.mark.parametrize("publisher", [MemoryPublisher(down=True), None])
def test_without_kafka_an_action_is_503_with_retry_after(publisher: MemoryPublisher | None) -> None:
    response = call(publisher, "/v1/issues/fp1/resolve")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "kafka_unavailable"


@pytest.mark.parametrize(
    "path", ["/v1/incidents/inc-1/snooze", "/v1/issues/fp1/delete", "/v1/issues//resolve"]
)
def test_an_unknown_action_is_not_sent(path: str) -> None:
    publisher = MemoryPublisher()
    assert call(publisher, path).status_code in (404, 405)
    assert publisher.sent == []
