"""What a topic is: name, role, partition key, schema, retention. The registry is ``topics``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

DAY_MS = 24 * 3600 * 1000


class Role(StrEnum):
    CONTROL = "control"
    INGEST = "ingest"
    DERIVED = "derived"
    INTERNAL = "internal"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    role: Role
    key: str
    schema: type[BaseModel]
    retention_ms: int | None = 7 * DAY_MS
    compacted: bool = False
    doc: str = ""
    partitions: int | None = None  # None: the deployment's PULSELINE_PARTITIONS

    def physical(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg
