"""A Faust table with its changelog topic taken from the registry (JSON keys and values)."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TableT

from pulseline.settings import ProcessorSettings
from pulseline.topic_spec import TopicSpec


def changelogged_table(
    app: faust.App, settings: ProcessorSettings, name: str, changelog: TopicSpec, default: Any
) -> TableT[Any, Any]:
    topic = app.topic(
        changelog.physical(settings.topic_prefix),
        partitions=settings.partitions,
        compacting=True,
        deleting=False,
        key_serializer="json",
        value_serializer="json",
    )
    return app.Table(name, default=default, partitions=settings.partitions, changelog_topic=topic)
