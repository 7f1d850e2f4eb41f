"""Actions: people ack/resolve incidents and resolve/ignore/unresolve issues.

(No ``from __future__ import annotations``: FastAPI resolves ``Annotated`` at definition.)

The read API changes no table itself. An action becomes a record on the topic its owner
consumes, and the processors apply it (the incident book, the issue table), so the new
state reaches the tables, alerting and every reader the usual way:

- ``POST /v1/incidents/{id}/ack|resolve`` -> ``IncidentSignal`` on ``INCIDENT_SIGNALS``,
  keyed by the incident's ``dedup_key`` (looked up in the incidents table);
- ``POST /v1/issues/{fingerprint}/resolve|ignore|unresolve`` -> ``IssueCommand`` on
  ``ISSUE_COMMANDS``, keyed ``project_id:fingerprint``.

Answers: 202 once Kafka acknowledged (acks=all); 404 for an id the key's project does not
have; 503 with ``Retry-After`` when Kafka does not acknowledge within the publisher's
timeout. Records are produced with Kafka's default partitioner, like the agents' topics.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from pulseline.records.incidents import INCIDENT_SIGNALS, IncidentSignal
from pulseline.records.issues import ISSUE_COMMANDS, IssueCommand, issue_key
from pulseline.settings import StorageSettings
from storage import derived_queries as q
from storage.client import Engine
from storage.read_common import ApiError, ProjectKey

Clock = Callable[[], datetime]
RETRY_AFTER_S = 5


class Unavailable(Exception):
    """Kafka did not take the record in time; the caller may retry."""


class Publisher(Protocol):
    """Sends one record and returns once the broker acknowledged it."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None: ...


class Lookup(Protocol):
    """What the actions need to know about the project's incidents and issues."""

    async def incident_dedup_key(self, project_id: int, incident_id: str) -> str | None: ...

    async def issue_exists(self, project_id: int, fingerprint: str) -> bool: ...


class TableLookup:
    """``Lookup`` over the stored incidents and issues tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def incident_dedup_key(self, project_id: int, incident_id: str) -> str | None:
        found = await self.engine.rows(*q.incident(self.engine.database, project_id, incident_id))
        return str(found[0]["dedup_key"]) if found else None

    async def issue_exists(self, project_id: int, fingerprint: str) -> bool:
        return bool(await self.engine.rows(*q.issue(self.engine.database, project_id, fingerprint)))


class KafkaPublisher:
    """``Publisher`` over an idempotent aiokafka producer (acks=all, default partitioner)."""

    def __init__(self, settings: StorageSettings, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s or settings.kafka_request_timeout_s
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(self.timeout_s * 1000),
        )
        self.started = False

    async def start(self) -> None:
        await self.producer.start()
        self.started = True

    async def stop(self) -> None:
        if self.started:
            await self.producer.stop()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        if not self.started:
            raise Unavailable("the producer is not running")
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(topic, value, key=key), self.timeout_s
            )
        except (KafkaError, TimeoutError) as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None


def incident_signal(
    prefix: str, action: Literal["ack", "resolve"], project_id: int, dedup_key: str, now: datetime
) -> tuple[str, bytes, bytes]:
    """``(topic, key, value)`` of a person's ack or resolve of the incident ``dedup_key``."""
    signal = IncidentSignal(
        action=action, dedup_key=dedup_key, at=now, project_id=project_id, reason="by a person"
    )
    return (
        INCIDENT_SIGNALS.physical(prefix),
        dedup_key.encode(),
        signal.model_dump_json().encode(),
    )


def issue_command(
    prefix: str,
    action: Literal["resolve", "ignore", "unresolve"],
    project_id: int,
    fingerprint: str,
    now: datetime,
) -> tuple[str, bytes, bytes]:
    """``(topic, key, value)`` of a person's decision about one issue."""
    command = IssueCommand(action=action, project_id=project_id, fingerprint=fingerprint, at=now)
    return (
        ISSUE_COMMANDS.physical(prefix),
        issue_key(project_id, fingerprint),
        command.model_dump_json().encode(),
    )


def _accepted(body: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        202: {
            "description": "Kafka acknowledged the action",
            "content": {"application/json": {"example": body}},
        },
        404: {"description": "no such id in this project"},
        503: {"description": "Kafka is unavailable; retry after Retry-After seconds"},
    }


def actions_router(
    reader: Callable[..., ProjectKey],
    lookup: Lookup,
    publisher: Publisher | None,
    prefix: str,
    clock: Clock = lambda: datetime.now(UTC),
) -> APIRouter:
    """The action endpoints; without a ``publisher`` every action answers 503."""
    router = APIRouter(prefix="/v1", tags=["actions"])
    Reader = Annotated[ProjectKey, Depends(reader)]
    Id = Annotated[str, Path(min_length=1, max_length=200)]

    async def send(record: tuple[str, bytes, bytes], body: dict[str, Any]) -> JSONResponse:
        try:
            if publisher is None:
                raise Unavailable("no producer configured")
            await publisher.publish(*record)
        except Unavailable as exc:
            return JSONResponse(
                {"error": "kafka_unavailable", "detail": str(exc)[:300]},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return JSONResponse({"status": "accepted", **body}, status_code=202)

    async def on_incident(
        key: ProjectKey, incident_id: str, action: Literal["ack", "resolve"]
    ) -> JSONResponse:
        dedup_key = await lookup.incident_dedup_key(key.project_id, incident_id)
        if dedup_key is None:
            raise ApiError(404, "not_found", f"no incident {incident_id} in this project")
        record = incident_signal(prefix, action, key.project_id, dedup_key, clock())
        return await send(record, {"action": action, "incident_id": incident_id})

    async def on_issue(
        key: ProjectKey, fingerprint: str, action: Literal["resolve", "ignore", "unresolve"]
    ) -> JSONResponse:
        if not await lookup.issue_exists(key.project_id, fingerprint):
            raise ApiError(404, "not_found", f"no issue {fingerprint} in this project")
        record = issue_command(prefix, action, key.project_id, fingerprint, clock())
        return await send(record, {"action": action, "fingerprint": fingerprint})

    incident_example = _accepted({"status": "accepted", "action": "ack", "incident_id": "inc_01"})
    issue_example = _accepted({"status": "accepted", "action": "resolve", "fingerprint": "9f1c"})

    @router.post(
        "/incidents/{incident_id}/ack",
        summary="Acknowledge an incident (alerting stops reminding)",
        status_code=202,
        responses=incident_example,
    )
    async def ack_incident(key: Reader, incident_id: Id) -> JSONResponse:
        return await on_incident(key, incident_id, "ack")

    @router.post(
        "/incidents/{incident_id}/resolve",
        summary="Resolve an incident by hand",
        status_code=202,
        responses=incident_example,
    )
    async def resolve_incident(key: Reader, incident_id: Id) -> JSONResponse:
        return await on_incident(key, incident_id, "resolve")

    @router.post(
        "/issues/{fingerprint}/resolve",
        summary="Mark an issue resolved (a new event reopens it as a regression)",
        status_code=202,
        responses=issue_example,
    )
    async def resolve_issue(key: Reader, fingerprint: Id) -> JSONResponse:
        return await on_issue(key, fingerprint, "resolve")

    @router.post(
        "/issues/{fingerprint}/ignore",
        summary="Ignore an issue (no alerts for it)",
        status_code=202,
        responses=issue_example,
    )
    async def ignore_issue(key: Reader, fingerprint: Id) -> JSONResponse:
        return await on_issue(key, fingerprint, "ignore")

    @router.post(
        "/issues/{fingerprint}/unresolve",
        summary="Reopen a resolved or ignored issue",
        status_code=202,
        responses=issue_example,
    )
    async def unresolve_issue(key: Reader, fingerprint: Id) -> JSONResponse:
        return await on_issue(key, fingerprint, "unresolve")

    return router
