"""Dead-lettering inside agents: Faust skips an event whose handler raises and commits
past it, so every agent catches its errors and hands the raw record here instead."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter

from pulseline.deadletter import DeadLetterInfo, reason_label

log = logging.getLogger("pulseline.processors")

DEAD_LETTERS = Counter(
    "pulseline_processor_dead_letters_total",
    "Events dead-lettered by the processors",
    ["stage", "reason"],
)


class DeadLetters:
    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def send(self, event: Any, stage: str, reason: str) -> None:
        message = event.message
        info = DeadLetterInfo(reason, stage, message.topic, message.partition, message.offset)
        await self.topic.send(key=message.key, value=message.value, headers=info.headers())
        DEAD_LETTERS.labels(stage, reason_label(reason)).inc()
        log.warning(
            "dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason
        )
