"""Run the gateway under uvicorn with the control plane's keys and the real producer.

With ``PULSELINE_GATEWAY_WORKERS`` above 1, uvicorn forks that many processes sharing the
port; each builds its own app (``create``) with its own producer and control-plane view.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.control.store import ControlStore
from pulseline.logs import configure
from pulseline.settings import GatewaySettings


def build(settings: GatewaySettings) -> FastAPI:
    control = ControlStore(settings)
    return create_app(settings, control.view, KafkaProducer(settings), control)


def create() -> FastAPI:
    """The app of one forked worker process, from the ``PULSELINE_*`` environment."""
    settings = GatewaySettings.from_env()
    configure("gateway", settings.log_level)
    return build(settings)


def serve(settings: GatewaySettings) -> None:
    """Serve until SIGINT/SIGTERM; then finish in-flight requests and flush Kafka."""
    configure("gateway", settings.log_level)
    options: dict[str, Any] = {
        "host": settings.gateway_host,
        "port": settings.gateway_port,
        "lifespan": "on",
        "loop": "uvloop",
        "http": "httptools",
        "log_level": settings.log_level.lower(),
        "access_log": False,  # /metrics counts requests; a line per batch is noise at load
        "timeout_graceful_shutdown": int(settings.produce_timeout_s) + 5,
        "server_header": False,
    }
    if settings.gateway_workers > 1:
        uvicorn.run(
            "ingest_gateway.server:create",
            factory=True,
            workers=settings.gateway_workers,
            **options,
        )
        return
    server = uvicorn.Server(uvicorn.Config(build(settings), **options))
    server.run()
    if not server.started:  # the lifespan failed, e.g. Kafka unreachable at boot
        raise SystemExit(3)
