"""The baseline the benchmark compares against: the same gateway, but each event is
handed over with its own ``await send_and_wait``, as a first version usually does.

Run as ``python -m pulseline.naive_gateway``; never used outside ``pulseline bench``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer

from ingest_gateway.app import create_app
from ingest_gateway.stamp import Record
from pulseline.control.store import ControlStore
from pulseline.settings import GatewaySettings


class NaiveProducer:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._producer: Any = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap, acks="all", enable_idempotence=True
        )
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_batch(self, records: Sequence[Record]) -> None:
        for topic, key, value in records:
            await self._producer.send_and_wait(topic, value=value, key=key)

    async def ready(self) -> bool:
        return True


def main() -> None:
    settings = GatewaySettings.from_env()
    control = ControlStore(settings)
    app = create_app(settings, control.view, NaiveProducer(settings), control)
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
