"""Event families: what ``attributes`` holds for each ``kind``, one versioned model each.

The gateway validates an event's ``attributes`` with ``FAMILIES[kind]`` (see
``pulseline.schemas.EventIn``). Known keys are type-checked; unknown keys are kept as
sent. A model's ``VERSION`` names its shape: a breaking change adds ``ErrorV2`` and
points ``FAMILIES`` at it, a compatible one (a new optional key) keeps the version.
The field names are documented, with an example per family, in docs/EVENTS.md.

Limits, so one event cannot grow without bound inside the byte limit of the whole
event (``max_event_bytes``), which still applies on top:

- names, slugs, tag keys and values, and other short strings: 200 characters;
- URLs, paths, referrers: 8192; ``message`` and exception ``value``: 8192;
  ``title``: 1000; a check-in's ``output``: 1 MiB (the ping door cuts it sooner);
- ``exception``: 100 entries; ``frames``: 250 per stack trace; ``breadcrumbs``: 100;
  ``fingerprint``: 50 parts; ``tags``: 50 pairs;
- numbers are JSON numbers, never strings or booleans; durations and sizes are >= 0;
  ``exit_code`` is 0 to 255; ``http_status`` is 100 to 599.

Normalisation: an error's ``level`` accepts the aliases ``log``, ``warn`` and
``critical`` (as Sentry does); a metric's ``type`` defaults to ``gauge``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)


class EventKind(StrEnum):
    ERROR = "error"
    TRANSACTION = "transaction"
    PAGEVIEW = "pageview"
    EVENT = "event"
    WEB_VITAL = "web_vital"
    CHECK_IN = "check_in"
    METRIC = "metric"


MAX_SHORT = 200
MAX_URL = 8192
MAX_MESSAGE = 8192
MAX_TITLE = 1000
MAX_OUTPUT = 1024 * 1024
MAX_EXCEPTIONS = 100
MAX_FRAMES = 250
MAX_BREADCRUMBS = 100
MAX_FINGERPRINT = 50
MAX_TAGS = 50

Short = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SHORT)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL)]
Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Tags = Annotated[dict[Short, Short], Field(max_length=MAX_TAGS)]
Object = dict[str, Any]


def _iso_time(value: str) -> str:
    """Checked as ISO 8601 but kept as sent, so nothing downstream sees a new spelling."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("expected an ISO 8601 time such as 2026-01-02T03:04:05Z") from None
    return value


IsoTime = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iso_time)]

_LEVEL_ALIASES = {"log": "info", "warn": "warning", "critical": "fatal"}


def _level_alias(value: object) -> object:
    return _LEVEL_ALIASES.get(value, value) if isinstance(value, str) else value


Level = Annotated[
    Literal["fatal", "error", "warning", "info", "debug"], BeforeValidator(_level_alias)
]


class Family(BaseModel):
    """Base of every family: unknown keys are kept, known keys are checked."""

    model_config = ConfigDict(extra="allow")

    VERSION: ClassVar[int]


class Part(BaseModel):
    """A nested object inside a family: also keeps unknown keys."""

    model_config = ConfigDict(extra="allow")


class Frame(Part):
    filename: Url | None = None
    abs_path: Url | None = None
    module: Short | None = None
    function: Short | None = None
    lineno: int | None = Field(default=None, ge=0)
    colno: int | None = Field(default=None, ge=0)
    in_app: bool | None = None


class Stacktrace(Part):
    frames: Annotated[list[Frame], Field(max_length=MAX_FRAMES)]


class ExceptionValue(Part):
    """One exception of a chain; as Sentry orders them, the last one is the raised one."""

    type: Short | None = None
    value: Message | None = None
    module: Short | None = None
    mechanism: Object | None = None
    stacktrace: Stacktrace | None = None

    @model_validator(mode="after")
    def _type_or_value(self) -> Self:
        if self.type is None and self.value is None:
            raise ValueError("an exception needs a type or a value")
        return self


class Breadcrumb(Part):
    timestamp: Number | IsoTime | None = None
    type: Short | None = None
    category: Short | None = None
    message: Message | None = None
    level: Level | None = None
    data: Object | None = None


class ErrorV1(Family):
    VERSION: ClassVar[int] = 1

    exception: Annotated[list[ExceptionValue], Field(max_length=MAX_EXCEPTIONS)] | None = None
    message: Message | None = None
    level: Level | None = None
    logger: Short | None = None
    platform: Short | None = None
    tags: Tags | None = None
    contexts: Object | None = None
    breadcrumbs: Annotated[list[Breadcrumb], Field(max_length=MAX_BREADCRUMBS)] | None = None
    fingerprint: Annotated[list[Short], Field(max_length=MAX_FINGERPRINT)] | None = None
    user: Object | None = None
    request: Object | None = None
    url: Url | None = None

    @model_validator(mode="after")
    def _exception_or_message(self) -> Self:
        if not self.exception and not self.message:
            raise ValueError("an error needs an exception or a message")
        return self


class TransactionV1(Family):
    VERSION: ClassVar[int] = 1

    name: Name | None = None
    route: Name | None = None
    op: Short | None = None
    method: Annotated[str, StringConstraints(max_length=32)] | None = None
    status: Short | StrictInt | None = None
    http_status: Annotated[StrictInt, Field(ge=100, le=599)] | None = None
    start: IsoTime | None = None
    duration_ms: NonNegative
    trace_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{32}$")] | None = None
    span_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{16}$")] | None = None

    @model_validator(mode="after")
    def _name_or_route(self) -> Self:
        if self.name is None and self.route is None:
            raise ValueError("a transaction needs a name or a route")
        return self


class PageviewV1(Family):
    VERSION: ClassVar[int] = 1

    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)]
    path: Url | None = None
    referrer: Url | None = None
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE)] | None = None
    screen: Annotated[str, StringConstraints(pattern=r"^\d{1,5}x\d{1,5}$")] | None = None
    utm_source: Short | None = None
    utm_medium: Short | None = None
    utm_campaign: Short | None = None
    utm_term: Short | None = None
    utm_content: Short | None = None


class EventV1(Family):
    """A custom event; a click is ``name="click"`` with ``{selector, text, href, tag}``."""

    VERSION: ClassVar[int] = 1

    name: Name
    properties: Object | None = None


class WebVitalV1(Family):
    VERSION: ClassVar[int] = 1

    name: Literal["LCP", "INP", "CLS", "FCP", "TTFB"]
    value: NonNegative
    rating: Literal["good", "needs-improvement", "poor"] | None = None
    url: Url | None = None
    path: Url | None = None


class CheckInV1(Family):
    """A monitor's check-in; a non-zero ``exit_code`` goes with status ``fail``."""

    VERSION: ClassVar[int] = 1

    monitor: Name
    status: Literal["start", "ok", "fail", "log"]
    exit_code: Annotated[StrictInt, Field(ge=0, le=255)] | None = None
    run_id: Short | None = None
    duration_ms: NonNegative | None = None
    output_size: Annotated[StrictInt, Field(ge=0)] | None = None
    output: Annotated[str, StringConstraints(max_length=MAX_OUTPUT)] | None = None
    monitor_id: Short | None = None
    source: Short | None = None


class MetricV1(Family):
    VERSION: ClassVar[int] = 1

    name: Name
    value: Number
    type: Literal["gauge", "counter"] = "gauge"
    unit: Short | None = None
    tags: Tags | None = None


FAMILIES: dict[EventKind, type[Family]] = {
    EventKind.ERROR: ErrorV1,
    EventKind.TRANSACTION: TransactionV1,
    EventKind.PAGEVIEW: PageviewV1,
    EventKind.EVENT: EventV1,
    EventKind.WEB_VITAL: WebVitalV1,
    EventKind.CHECK_IN: CheckInV1,
    EventKind.METRIC: MetricV1,
}


def normalise(kind: EventKind, attributes: Any) -> dict[str, Any]:
    """``attributes`` checked against the family of ``kind``, as the plain dict to send.

    Keys sent as null and optional keys not sent are left out; only documented
    defaults (a metric's ``type``) are added. Raises ``pydantic.ValidationError``.
    """
    model = FAMILIES[kind].model_validate(attributes)
    return model.model_dump(exclude_none=True)
