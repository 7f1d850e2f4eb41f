"""The storage process: migrations, then the sink and the read API on one event loop.

With the embedded engine (chdb) only one process may open the data directory, so the
sink and the read API always share this process and its ``Engine``.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.logs import configure
from pulseline.settings import StorageSettings
from storage.actions_api import KafkaPublisher
from storage.admin_api import admin_router
from storage.api import create_app
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.sink import Sink

log = logging.getLogger("pulseline.storage")


async def serve(settings: StorageSettings) -> None:
    engine = Engine.open(settings)
    applied = migrate(engine, cluster=settings.clickhouse_cluster)
    if applied:
        log.info("applied migrations: %s", ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
    metrics = StorageMetrics()
    control = ControlStore(settings)
    await control.start()
    admin = admin_router(ControlService(control))
    publisher = KafkaPublisher(settings)
    await publisher.start()
    app = create_app(settings, engine, control.view, metrics, admin, publisher)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_level="warning", lifespan="on"
        )
    )
    sink = Sink(settings, engine, metrics)
    await sink.start()
    sink_task = asyncio.create_task(sink.run(), name="sink")
    api_task = asyncio.create_task(server.serve(), name="read-api")

    loop = asyncio.get_running_loop()

    stopping: list[asyncio.Task[None]] = []

    def _shutdown() -> None:
        server.should_exit = True
        stopping.append(loop.create_task(sink.stop()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _shutdown)
    try:
        done, _ = await asyncio.wait({sink_task, api_task}, return_when=asyncio.FIRST_COMPLETED)
        _shutdown()
        await asyncio.gather(sink_task, api_task, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await sink.close()
        await publisher.stop()
        await control.stop()
        engine.close()


def main() -> None:
    settings = StorageSettings.from_env()
    configure("storage", settings.log_level)
    asyncio.run(serve(settings))
