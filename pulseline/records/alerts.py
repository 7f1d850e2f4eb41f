"""Alert deliveries: one ``Delivery`` record per attempt, on ``alerting.deliveries``.

The topic is both the delivery log (storage sinks it into ClickHouse) and the runner's
durable state: at start the runner reads it from the beginning and folds it
(``alerting.ledger``) to learn which deliveries are finished and which retries are pending.
Every attempt is kept (no compaction); each record carries the incident snapshot it was
about, so a pending retry or a reminder can be sent again after a restart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pulseline.topic_spec import DAY_MS, Role, TopicSpec


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    DISABLED = "disabled"

    @property
    def finished(self) -> bool:
        return self is not DeliveryStatus.RETRYING


class Delivery(BaseModel):
    """v1: the outcome of one attempt to notify one channel of one incident transition.

    ``delivery_id`` is the Standard Webhooks ``webhook-id``: the same for every attempt of
    one (transition, channel), and for a reminder ``<id>_r<n>``. ``next_attempt_at`` is set
    only while ``retrying``. ``kind`` tells a transition's notification from a reminder.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    delivery_id: str
    kind: Literal["transition", "reminder"] = "transition"
    incident_id: str
    incident_version: int
    state: str
    dedup_key: str
    project_id: int
    channel_id: str
    channel_type: str
    attempt: int
    status: DeliveryStatus
    http_status: int | None = None
    latency_ms: float | None = None
    error: str = ""
    at: datetime
    next_attempt_at: datetime | None = None
    incident: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


DELIVERIES = TopicSpec(
    "alerting.deliveries",
    Role.DERIVED,
    "delivery_id",
    Delivery,
    retention_ms=30 * DAY_MS,
    doc="every alert delivery attempt; the runner rebuilds its state from it at start",
)

TOPICS: tuple[TopicSpec, ...] = (DELIVERIES,)
