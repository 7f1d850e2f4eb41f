"""Samples to the gateway's ``metric`` events (``pulseline.families.MetricV1``).

Each event gets its ``event_id`` here, once: a batch sent again after a 503 carries the
same ids, so the pipeline can tell a retry from new data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from pulseline.collectors.pg_metrics import Sample, shorten
from pulseline.families import MAX_TAGS

T = TypeVar("T")


def metric_event(
    sample: Sample,
    at: datetime,
    common_tags: Mapping[str, str] | None = None,
    new_id: Callable[[], UUID] = uuid4,
) -> dict[str, Any]:
    """The event as the gateway accepts it; a sample's own tags win over ``common_tags``."""
    tags = {shorten(k): shorten(v) for k, v in {**(common_tags or {}), **sample.tags}.items()}
    attributes: dict[str, Any] = {
        "name": sample.name,
        "value": float(sample.value),
        "type": "gauge",
        "unit": sample.unit,
    }
    if tags:
        attributes["tags"] = dict(list(tags.items())[:MAX_TAGS])
    return {
        "kind": "metric",
        "event_id": str(new_id()),
        "timestamp": at.isoformat(),
        "attributes": attributes,
    }


def metric_events(
    samples: Iterable[Sample],
    at: datetime,
    common_tags: Mapping[str, str] | None = None,
    new_id: Callable[[], UUID] = uuid4,
) -> list[dict[str, Any]]:
    """One event per sample whose value is a finite number (the gateway refuses others)."""
    return [metric_event(s, at, common_tags, new_id) for s in samples if math.isfinite(s.value)]


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + max(size, 1)]
