"""The dead-letter contract: the record goes to ``dlq.events`` unchanged; headers say why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeadLetterInfo:
    reason: str
    stage: str
    topic: str
    partition: int
    offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("error", self.reason[:2000].encode()),
            ("stage", self.stage.encode()),
            ("source.topic", self.topic.encode()),
            ("source.partition", str(self.partition).encode()),
            ("source.offset", str(self.offset).encode()),
        ]

    @classmethod
    def from_headers(
        cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]
    ) -> DeadLetterInfo:
        h = {k: v.decode() for k, v in headers}
        return cls(
            h["error"],
            h["stage"],
            h["source.topic"],
            int(h["source.partition"]),
            int(h["source.offset"]),
        )


def reason_label(reason: str) -> str:
    """A low-cardinality label for metrics: the text before the first colon."""
    return reason.split(":", 1)[0][:60]
