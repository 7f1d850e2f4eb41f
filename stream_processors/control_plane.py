"""One ``ControlStore`` per worker, started as a Faust service with the app.

``control_store(app, settings)`` returns the worker's store (creating and registering it on
first use, so several agents share one). The service reads ``control.entities`` to its end
before the worker goes on starting, then the store tails the topic; agents that run before
it is loaded wait on ``loaded(app)``. A store that cannot read the topic fails the start.
"""

from __future__ import annotations

import asyncio

import faust
from mode import Service

from pulseline.control.store import ControlStore
from pulseline.settings import ProcessorSettings

_STORES: dict[int, tuple[ControlStore, asyncio.Event]] = {}


def control_store(app: faust.App, settings: ProcessorSettings) -> ControlStore:
    if id(app) not in _STORES:
        store, ready = ControlStore(settings), asyncio.Event()
        _STORES[id(app)] = (store, ready)

        @app.service
        class ControlPlane(Service):
            async def on_start(self) -> None:
                await store.start()
                ready.set()

            async def on_stop(self) -> None:
                await store.stop()

    return _STORES[id(app)][0]


async def loaded(app: faust.App) -> None:
    """Return once the worker's store holds the whole configuration."""
    await _STORES[id(app)][1].wait()
