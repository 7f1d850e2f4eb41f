"""Create the registry's topics, idempotently: what exists is left as it is."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pulseline.settings import CommonSettings
from pulseline.topics import REGISTRY, TopicSpec


@dataclass(frozen=True)
class TopicStatus:
    name: str
    partitions: int
    created: bool


async def create_topics(
    settings: CommonSettings, specs: tuple[TopicSpec, ...] = REGISTRY
) -> list[TopicStatus]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {spec.physical(settings.topic_prefix): spec for spec in specs}
        missing = [
            NewTopic(
                name,
                num_partitions=spec.partitions or settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=spec.config(),
            )
            for name, spec in wanted.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        created = {topic.name for topic in missing}
        described = await admin.describe_topics(list(wanted))
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        return [TopicStatus(name, partitions.get(name, 0), name in created) for name in wanted]
    finally:
        await admin.close()
