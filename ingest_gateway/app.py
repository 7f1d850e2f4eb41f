"""Build the gateway's ASGI app from its settings, key ring and Kafka producer.

The app's lifespan starts the producer and, on shutdown, stops it: pending sends are
flushed (for at most ``produce_timeout_s``) before the process exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ingest_gateway.errors import install_error_handlers
from ingest_gateway.ingest import ingest_router
from ingest_gateway.metrics import CountRequests, GatewayMetrics
from ingest_gateway.probes import probes_router
from ingest_gateway.producer import Producer
from pulseline.keys import KeyRing
from pulseline.settings import GatewaySettings


def create_app(settings: GatewaySettings, keyring: KeyRing, producer: Producer) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        try:
            yield
        finally:
            await producer.stop()

    metrics = GatewayMetrics()
    app = FastAPI(title="Pulseline ingest gateway", lifespan=lifespan)
    install_error_handlers(app, settings.retry_after_s)
    app.include_router(ingest_router(settings, keyring, producer, metrics))
    app.include_router(probes_router(producer, metrics))
    app.add_middleware(CountRequests, metrics=metrics)
    return app
