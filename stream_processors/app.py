"""The Faust app. Faust stays in this package; the math lives in ``logic/``.

Every topic the app touches is declared in ``pulseline.topics`` and created before the
worker starts (``topic_allow_declare=False``), so none appears by surprise. Faust's own web
server stays off; ``metrics.py`` serves ``/metrics`` and the probes on
``PULSELINE_PROCESSORS_WEB_HOST:PULSELINE_PROCESSORS_WEB_PORT``.
"""

from __future__ import annotations

import faust

from pulseline.settings import ProcessorSettings
from pulseline.topics import DEAD_LETTERS
from stream_processors import in_order, metrics
from stream_processors.agents import counts, incidents, issues, monitors, route, sessions, stats
from stream_processors.deadletter import DeadLetters
from stream_processors.durable_flush import App


def build_app(settings: ProcessorSettings) -> faust.App:
    datadir = settings.data_dir.resolve() / "faust" / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = App(  # a durable producer flush: see durable_flush.py
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,
        datadir=str(datadir),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # stream_wait_empty stays True (the default): a revoke waits for what agents hold.
        # That is why one agent alone reads each topic; see agents/route.py.
    )
    dead = DeadLetters(
        app.topic(
            DEAD_LETTERS.physical(settings.topic_prefix),
            key_serializer="raw",
            value_serializer="raw",
        )
    )
    in_order.install(app, settings)
    route.install(app, settings, dead)
    counts.install(app, settings, dead)
    monitors.install(app, settings, dead)
    incidents.install(app, settings, dead)
    stats.install(app, settings, dead)
    issues.install(app, settings, dead)
    sessions.install(app, settings, dead)
    metrics.install(app, settings)
    return app
