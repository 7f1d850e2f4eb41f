"""Run the gateway under uvicorn with the control plane's keys and the real producer."""

from __future__ import annotations

import uvicorn

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.control.store import ControlStore
from pulseline.logs import configure
from pulseline.settings import GatewaySettings


def serve(settings: GatewaySettings) -> None:
    """Serve until SIGINT/SIGTERM; then finish in-flight requests and flush Kafka."""
    configure("gateway", settings.log_level)
    control = ControlStore(settings)
    app = create_app(settings, control.view, KafkaProducer(settings), control)
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,  # /metrics counts requests; a line per batch is noise at load
        timeout_graceful_shutdown=int(settings.produce_timeout_s) + 5,
        server_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # the lifespan failed, e.g. Kafka unreachable at boot
        raise SystemExit(3)
