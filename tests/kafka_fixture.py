"""Where integration tests find a real broker, in order of preference:

1. ``PULSELINE_TEST_KAFKA_BOOTSTRAP``: an external broker you run;
2. testcontainers, when a Docker engine answers;
3. the bundled local broker from ``deploy/local`` on a free port, in a temp dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.local.broker import LocalBroker
from pulseline.ports import free_port, free_port_pair
from pulseline.settings import LocalKafkaSettings

__all__ = ["REPO", "free_port", "free_port_pair", "kafka_bootstrap"]

REPO = Path(__file__).resolve().parents[1]


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_bootstrap(tmp: Path) -> Iterator[str]:
    external = os.environ.get("PULSELINE_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = LocalBroker(
        LocalKafkaSettings(
            data_dir=tmp,
            kafka_port=free_port_pair(),
            kafka_dist_dir=REPO / ".pulseline" / "kafka" / "dist",
        )
    )
    broker.start(tie_to_parent=True)  # no orphan broker if pytest is killed
    try:
        yield broker.settings.bootstrap
    finally:
        broker.stop()
