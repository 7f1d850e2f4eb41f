"""Validate and stamp a batch of raw events into Kafka records: the gateway's pure core.

Each raw event ends as exactly one of:

- a record ``(topic, key, value)``: ``value`` is the v1 ``Event`` envelope as JSON
  (byte for byte ``orjson.dumps(Event(...).model_dump(mode="json"))``), ``key`` is
  ``<project_id>:<field>`` where the field is the one the topic registry names for
  the family (``pulseline.topics.INGEST``), cut to ``MAX_KEY_CHARS``, falling back
  to the ``event_id`` when the event lacks it;
- a ``Rejection`` with its index, a human reason and a short code for metrics.

Every record carries the sender's ``client_ip`` and ``user_agent`` (``ClientInfo``,
worked out by ``ingest_gateway.client`` from the request, never from the body).

The normalised attributes pass through the ``Scrubber`` (``ingest_gateway.scrub``)
before they are serialised: secrets and card numbers never reach Kafka.

No clock, no I/O: the caller passes ``now``, the client and, for tests, the id factory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import ValidationError

from ingest_gateway.body import NotJson, json_type
from ingest_gateway.client import ClientInfo
from ingest_gateway.scrub import Scrubber
from pulseline.schemas import EventIn, EventKind
from pulseline.settings import GatewaySettings
from pulseline.topics import INGEST

Record = tuple[str, bytes, bytes]
KeyField = Callable[[EventIn], object]

# Pydantic writes a UTC datetime as ...Z; OPT_UTC_Z makes orjson do the same.
_DUMPS_OPTIONS = orjson.OPT_UTC_Z
_KINDS = frozenset(kind.value for kind in EventKind)
_MAX_REASON_ERRORS = 3
# A key only picks a partition: a cut-off key stays deterministic, and the record's
# size stays bounded by max_event_bytes plus this (attribute values have no limit).
MAX_KEY_CHARS = 200
NO_CLIENT = ClientInfo()


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str
    code: str
    kind: str

    def as_json(self) -> dict[str, object]:
        return {"index": self.index, "reason": self.reason}


@dataclass(slots=True)
class Stamped:
    records: list[Record] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def key_field(spec_key: str) -> KeyField:
    """The event field a registry key such as ``project_id:attributes.monitor`` names."""
    prefix, _, path = spec_key.partition(":")
    if prefix != "project_id" or not path:
        raise ValueError(f"unsupported partition key {spec_key!r}")
    if path.startswith("attributes."):
        name = path.removeprefix("attributes.")
        return lambda event: event.attributes.get(name)
    if path in EventIn.model_fields:
        return lambda event: getattr(event, path)
    raise ValueError(f"unsupported partition key {spec_key!r}")


class Stamper:
    """Turns raw events into records for one deployment (topic prefix and limits)."""

    def __init__(
        self,
        topic_prefix: str,
        max_event_bytes: int,
        max_age: timedelta = timedelta(days=365),
        max_future: timedelta = timedelta(hours=1),
        scrubber: Scrubber | None = None,
    ) -> None:
        self._max_event_bytes = max_event_bytes
        self._scrub = scrubber or Scrubber()
        self._max_age = max_age
        self._max_future = max_future
        self._routes: dict[EventKind, tuple[str, KeyField]] = {
            kind: (spec.physical(topic_prefix), key_field(spec.key))
            for kind, spec in INGEST.items()
        }

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Stamper:
        """The one stamper configuration every door uses."""
        return cls(
            settings.topic_prefix,
            settings.max_event_bytes,
            max_age=timedelta(days=settings.max_event_age_days),
            scrubber=Scrubber.from_settings(settings.scrub_pii, settings.scrub_extra_fields),
        )

    def stamp(
        self,
        items: Sequence[Any],
        project_id: int,
        now: datetime,
        new_id: Callable[[], UUID] = uuid4,
        client: ClientInfo = NO_CLIENT,
    ) -> Stamped:
        out = Stamped()
        received_at = now.astimezone(UTC)
        for index, item in enumerate(items):
            if isinstance(item, NotJson):
                out.rejected.append(Rejection(index, f"not JSON: {item}", "not_json", "unknown"))
                continue
            if not isinstance(item, dict):
                reason = f"expected a JSON object, got {json_type(item)}"
                out.rejected.append(Rejection(index, reason, "not_object", "unknown"))
                continue
            try:
                event = EventIn.model_validate(item)
            except ValidationError as exc:
                out.rejected.append(Rejection(index, _reason(exc), "invalid", _kind_of(item)))
                continue
            late = self._out_of_range(event.timestamp, received_at)
            if late is not None:
                out.rejected.append(Rejection(index, late, "bad_timestamp", event.kind.value))
                continue
            event_id = str(event.event_id or new_id())
            event.attributes = self._scrub(event.attributes)
            value = self._value(event, event_id, project_id, received_at, client)
            if len(value) > self._max_event_bytes:
                reason = (
                    f"the event is {len(value)} bytes once stamped;"
                    f" the limit is {self._max_event_bytes}"
                )
                out.rejected.append(Rejection(index, reason, "too_large", event.kind.value))
                continue
            topic, key_of = self._routes[event.kind]
            key = key_of(event)
            if key is None or key == "" or isinstance(key, dict | list):
                key = event_id
            key_bytes = f"{project_id}:{str(key)[:MAX_KEY_CHARS]}".encode()
            out.records.append((topic, key_bytes, value))
            out.event_ids.append(event_id)
            out.kinds.append(event.kind.value)
        return out

    def _out_of_range(self, timestamp: datetime | None, now: datetime) -> str | None:
        """Rejected, not clamped: a clamped time would put the event where it never was."""
        if timestamp is None:
            return None
        ts = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        if ts - now > self._max_future:
            ahead = (ts - now).total_seconds() / 3600
            return (
                f"timestamp is {ahead:.1f} h in the future; the limit is "
                f"{self._max_future.total_seconds() / 3600:g} h"
            )
        if now - ts > self._max_age:
            return f"timestamp is older than the retention window of {self._max_age.days} days"
        return None

    @staticmethod
    def _value(
        event: EventIn, event_id: str, project_id: int, received_at: datetime, client: ClientInfo
    ) -> bytes:
        timestamp = event.timestamp or received_at
        if timestamp.tzinfo is None:  # a client's naive time is taken as UTC
            timestamp = timestamp.replace(tzinfo=UTC)
        # Field for field the v1 Event envelope, without building the model per event.
        envelope = {
            "schema_version": 1,
            "event_id": event_id,
            "project_id": project_id,
            "kind": event.kind.value,
            "timestamp": timestamp,
            "received_at": received_at,
            "distinct_id": event.distinct_id,
            "session_id": event.session_id,
            "release": event.release,
            "environment": event.environment,
            "client_ip": client.ip,
            "user_agent": client.user_agent,
            "attributes": event.attributes,
        }
        return orjson.dumps(envelope, option=_DUMPS_OPTIONS)


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}"
        for err in errors[:_MAX_REASON_ERRORS]
    ]
    if len(errors) > _MAX_REASON_ERRORS:
        parts.append(f"and {len(errors) - _MAX_REASON_ERRORS} more")
    return "; ".join(parts)


def _kind_of(item: dict[str, Any]) -> str:
    kind = item.get("kind")
    return kind if isinstance(kind, str) and kind in _KINDS else "unknown"
