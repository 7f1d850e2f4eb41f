"""``GET /v1/live``: a project's new events and incidents as Server-Sent Events.

(No ``from __future__ import annotations``: FastAPI resolves ``Annotated`` at definition.)

Each connection runs its own group-less aiokafka consumer over every ``ingest.*`` topic and
``derived.incidents``, positioned at their ends *before* the first byte is sent (a
``: connected`` comment), so whatever is produced after a client sees that line reaches it.
Records of other projects are dropped. An idle stream gets a ``: heartbeat`` comment every
``HEARTBEAT_S``; a stream ends after ``MAX_STREAM_S`` (clients reconnect, as EventSource
does). At most ``max_per_project`` streams per project and ``max_total`` in all; more
answer 429 with ``Retry-After``. Every stream decodes every record of the topics, so the
bounds also bound the CPU the live view costs.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from pulseline.records.incidents import INCIDENTS
from pulseline.settings import StorageSettings
from pulseline.topics import INGEST
from storage.read_common import ProjectKey

HEARTBEAT_S = 15.0
MAX_STREAM_S = 3600.0


def live_message(kind: str, value: bytes | None, project_id: int) -> bytes | None:
    """The SSE message for one record (``kind`` is ``event`` or ``incident``), or None
    when it belongs to another project or is not JSON."""
    if value is None:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("project_id") != project_id:
        return None
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"


class Slots:
    """Counts open streams per project and in all; ``take`` says whether one more fits."""

    def __init__(self, max_per_project: int, max_total: int) -> None:
        self.max_per_project, self.max_total = max_per_project, max_total
        self.open: dict[int, int] = {}

    def take(self, project_id: int) -> bool:
        if sum(self.open.values()) >= self.max_total:
            return False
        if self.open.get(project_id, 0) >= self.max_per_project:
            return False
        self.open[project_id] = self.open.get(project_id, 0) + 1
        return True

    def give_back(self, project_id: int) -> None:
        self.open[project_id] -= 1
        if not self.open[project_id]:
            del self.open[project_id]


def live_router(
    settings: StorageSettings,
    reader: Callable[..., ProjectKey],
    max_per_project: int = 5,
    max_total: int = 50,
    heartbeat_s: float = HEARTBEAT_S,
) -> APIRouter:
    router = APIRouter(tags=["live"])
    Reader = Annotated[ProjectKey, Depends(reader)]
    slots = Slots(max_per_project, max_total)
    prefix = settings.topic_prefix
    kinds = {spec.physical(prefix): "event" for spec in INGEST.values()}
    kinds[INCIDENTS.physical(prefix)] = "incident"

    async def at_the_end() -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *kinds,
            bootstrap_servers=settings.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            for _ in range(1000):  # without a group, every partition gets assigned
                if consumer.assignment():
                    break
                await asyncio.sleep(0.05)
            tps = sorted(consumer.assignment())
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the end offsets now, not at the first fetch
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def stream(
        request: Request, consumer: AIOKafkaConsumer, project_id: int
    ) -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            started = last = time.monotonic()
            while time.monotonic() - started < MAX_STREAM_S:
                if await request.is_disconnected():
                    return
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for tp, records in batch.items():
                    for record in records:
                        message = live_message(kinds[tp.topic], record.value, project_id)
                        if message is not None:
                            last = time.monotonic()
                            yield message
                if time.monotonic() - last >= heartbeat_s:
                    last = time.monotonic()
                    yield b": heartbeat\n\n"
        finally:
            slots.give_back(project_id)
            await asyncio.shield(consumer.stop())

    @router.get(
        "/v1/live",
        summary="Stream the project's new events and incidents (Server-Sent Events)",
        responses={
            200: {
                "content": {
                    "text/event-stream": {
                        "example": 'event: event\ndata: {"kind": "pageview", "project_id": 1}\n\n'
                    }
                }
            },
            429: {"description": "too many live streams; retry later"},
        },
    )
    async def live(request: Request, key: Reader) -> Any:
        if not slots.take(key.project_id):
            return JSONResponse(
                {"error": "too_many_streams", "detail": "close another live stream first"},
                status_code=429,
                headers={"Retry-After": "30"},
            )
        try:
            consumer = await asyncio.wait_for(at_the_end(), settings.kafka_request_timeout_s)
        except Exception as exc:
            slots.give_back(key.project_id)
            return JSONResponse(
                {"error": "kafka_unavailable", "detail": f"{type(exc).__name__}: {exc}"[:300]},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return StreamingResponse(
            stream(request, consumer, key.project_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
