from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulseline.settings import CommonSettings
from pulseline.topic_admin import create_topics
from tests.kafka_fixture import kafka_bootstrap


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker, shared by the whole session."""
    with kafka_bootstrap(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture
def env(kafka: str, tmp_path: Path) -> dict[str, str]:
    """A PULSELINE_* environment with this test's own topics, group names and data dir."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    values = {
        "PULSELINE_KAFKA_BOOTSTRAP": kafka,
        "PULSELINE_TOPIC_PREFIX": prefix,
        "PULSELINE_PARTITIONS": "2",
        "PULSELINE_DATA_DIR": str(tmp_path / "data"),
        "PULSELINE_SINK_GROUP": f"{prefix}sink",
    }
    settings = CommonSettings.from_env(values)
    asyncio.run(create_topics(settings))
    return values


def run(coro: Any) -> Any:
    return asyncio.run(coro)
