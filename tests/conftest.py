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


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded engine per test process (chdb allows one data path per process)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def storage_env(env: dict[str, str], chdb_dir: Path) -> dict[str, str]:
    """``env`` plus this test's own ClickHouse database in the session's embedded engine."""
    return {
        **env,
        "PULSELINE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
        "PULSELINE_CLICKHOUSE_DATABASE": f"t_{uuid.uuid4().hex[:10]}",
        "PULSELINE_SINK_FLUSH_INTERVAL_S": "0.3",
    }
