"""Derived statistics records and their topics.

A *series* is one stream of numbers named ``"<project_id>|<family>|<name>"``: a monitor's
run durations (``check_in.duration``) or output sizes (``check_in.output_size``), a
route's latency (``transaction``), a web vital (``web_vital``), a metric (``metric``) or a
project's error count (``error``). The stats agent re-keys ingest events by series onto
``STATS_BY_SERIES`` as ``SeriesPoints``, folds them into the ``series_stats`` table, writes
``StatsSnapshot``s of the series that changed on a timer and each ``Anomaly`` at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from pulseline.topic_spec import DAY_MS, Role, TopicSpec


class SeriesPoints(BaseModel):
    """v1: values of one series from one source partition in one routed batch, in order."""

    schema_version: Literal[1] = 1
    series: str
    source: str = Field(description="topic:partition the events were read from")
    values: list[float]
    ats: list[float] = Field(description="event times, Unix seconds")
    event_ids: list[str]
    offsets: list[int] = Field(description="source offsets, ascending; replays are skipped")


class StatsSnapshot(BaseModel):
    """v1: the running statistics of a series; a larger ``version`` replaces a smaller."""

    schema_version: Literal[1] = 1
    project_id: int
    family: str
    name: str
    count: int = Field(ge=0)
    mean: float
    variance: float = Field(description="population variance (ddof=0)")
    stddev: float = Field(description="sample standard deviation (ddof=1)")
    min: float | None
    max: float | None
    p50: float | None = Field(description="DDSketch estimate, within 1% relative error")
    p95: float | None
    at: datetime = Field(description="when the snapshot was taken")
    version: int = Field(description="the count: grows with every change of the series")


class Anomaly(BaseModel):
    """v1: one value a rule found anomalous, with a sentence saying why."""

    schema_version: Literal[1] = 1
    project_id: int
    series: str
    rule: str
    value: float
    score: float
    explanation: str
    at: datetime = Field(description="event time of the value judged")
    event_id: str


class SeriesState(BaseModel):
    """Changelog value: the rule states of one series (``logic`` modules' ``to_dict``)."""

    model_config = {"extra": "allow"}


STATS = TopicSpec(
    "derived.stats",
    Role.DERIVED,
    "project_id|family|name",
    StatsSnapshot,
    doc="running statistics per series, emitted on a timer for the series that changed",
)
ANOMALIES = TopicSpec(
    "derived.anomalies",
    Role.DERIVED,
    "project_id|family|name",
    Anomaly,
    retention_ms=30 * DAY_MS,
    doc="values the anomaly rules flagged, emitted as soon as their batch is folded",
)
STATS_BY_SERIES = TopicSpec(
    "pulseline-processors-stats_by_series-repartition",
    Role.INTERNAL,
    "project_id|family|name",
    SeriesPoints,
    retention_ms=DAY_MS,
    doc="ingest values re-keyed by series, so each series' state lives on one partition",
)
STATS_CHANGELOG = TopicSpec(
    "pulseline-processors-series_stats-changelog",
    Role.INTERNAL,
    "project_id|family|name, or offset|<partition>",
    SeriesState,
    retention_ms=None,
    compacted=True,
    doc="Faust changelog of the series states and of the last applied offset per partition",
)

TOPICS: tuple[TopicSpec, ...] = (STATS, ANOMALIES, STATS_BY_SERIES, STATS_CHANGELOG)
