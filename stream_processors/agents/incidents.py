"""The incident book: signals in, incident transitions out.

processors.incident_signals (keyed by dedup_key) ──apply──► incident_book table ──►
derived.incidents (keyed by dedup_key). The table is keyed like its source topic, so its
changelog stays co-partitioned without re-keying. A signal is timed by its own ``at``.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from pulseline.records.incidents import (
    INCIDENT_BOOK_CHANGELOG,
    INCIDENT_SIGNALS,
    INCIDENTS,
    IncidentSignal,
)
from pulseline.settings import ProcessorSettings
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.incident_signals import JsonIncidents, apply_signal
from stream_processors.logic.incidents import IncidentBook
from stream_processors.tables import changelogged_table

STAGE = "incident_book"


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix
    signals = app.topic(
        INCIDENT_SIGNALS.physical(prefix), key_serializer="raw", value_serializer="raw"
    )
    out = app.topic(INCIDENTS.physical(prefix), key_serializer="raw", value_serializer="raw")
    table = changelogged_table(app, settings, "incident_book", INCIDENT_BOOK_CHANGELOG, None)
    book = IncidentBook(JsonIncidents(table))

    @app.agent(signals, name=STAGE)
    async def keep_book(stream: Any) -> None:
        in_order = InOrder(app, STAGE)
        async for event in in_order.events(stream):
            try:
                signal = IncidentSignal.model_validate_json(event.value)
                incident = apply_signal(book, signal)
            except Exception as exc:
                await dead.send(event, STAGE, f"{type(exc).__name__}: {exc}")
                continue
            if incident is not None:
                await out.send(
                    key=incident.dedup_key.encode(), value=orjson.dumps(incident.to_json())
                )
