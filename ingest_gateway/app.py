"""Build the gateway's ASGI app from its settings, key ring and Kafka producer.

The app's lifespan loads the control plane (keys, projects), starts the producer and, on
shutdown, stops it: pending sends are flushed (for at most ``produce_timeout_s``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ingest_gateway.errors import install_error_handlers
from ingest_gateway.ingest import ingest_router
from ingest_gateway.limits import Gate
from ingest_gateway.metrics import CountRequests, GatewayMetrics
from ingest_gateway.pings import ping_router
from ingest_gateway.probes import probes_router
from ingest_gateway.producer import Producer
from ingest_gateway.sdk import sdk_router
from ingest_gateway.sentry import sentry_router
from pulseline.control.store import ControlStore
from pulseline.keys import KeyRing
from pulseline.logs import RequestIds
from pulseline.settings import GatewaySettings


def create_app(
    settings: GatewaySettings,
    keyring: KeyRing,
    producer: Producer,
    control: ControlStore | None = None,
) -> FastAPI:
    """``control``, when given, is started first and must be loaded for ``/readyz``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if control is not None:
            await control.start()
        try:
            await producer.start()
            try:
                yield
            finally:
                await producer.stop()
        finally:
            if control is not None:
                await control.stop()

    metrics = GatewayMetrics()
    # One gate for every door: a project's native, Sentry and ping traffic share its limits.
    gate = Gate.from_settings(settings, control)
    app = FastAPI(title="Pulseline ingest gateway", lifespan=lifespan)
    install_error_handlers(app, settings.retry_after_s)
    app.include_router(ingest_router(settings, keyring, producer, metrics, gate))
    app.include_router(sentry_router(settings, keyring, producer, metrics, gate))
    app.include_router(probes_router(producer, metrics, control))
    app.include_router(sdk_router())
    app.include_router(ping_router(settings, control, producer, metrics, gate))
    app.add_middleware(CountRequests, metrics=metrics)
    app.add_middleware(RequestIds)
    return app
