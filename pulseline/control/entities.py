"""Control-plane entities (schema v1). Ids: projects are numbers (Sentry DSNs need them),
everything else a UUID string."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pulseline.keys import Scope
from stream_processors.logic.thresholds import Thresholds

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class EntityType(StrEnum):
    PROJECT = "project"
    API_KEY = "api_key"
    MONITOR = "monitor"
    CHANNEL = "channel"
    RULE = "rule"


class Tier(StrEnum):
    FREE = "free"
    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class TierLimits(BaseModel):
    retention_days: int
    events_per_second: int
    monthly_quota: int


TIERS: dict[Tier, TierLimits] = {
    Tier.FREE: TierLimits(retention_days=7, events_per_second=50, monthly_quota=1_000_000),
    Tier.STARTER: TierLimits(retention_days=30, events_per_second=500, monthly_quota=10_000_000),
    Tier.PRO: TierLimits(retention_days=90, events_per_second=5_000, monthly_quota=100_000_000),
    Tier.ENTERPRISE: TierLimits(
        retention_days=365, events_per_second=50_000, monthly_quota=5_000_000_000
    ),
}


def _thresholds(overrides: dict[str, float]) -> dict[str, float]:
    """Refuse an unknown rule limit or a bad value now, not when a worker applies it."""
    Thresholds().with_overrides(overrides)
    return overrides


Overrides = Annotated[dict[str, float], AfterValidator(_thresholds)]


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Project(_Entity):
    id: int = Field(ge=1)
    name: Name
    slug: Slug
    tier: Tier = Tier.FREE
    retention_days: int | None = Field(None, ge=1, le=3650)
    # Bounded so every value fits the 64-bit integers of the store and of ClickHouse.
    events_per_second: int | None = Field(None, ge=1, le=10_000_000)
    monthly_quota: int | None = Field(None, ge=1, le=10**15)
    ping_key: str = Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")
    thresholds: Overrides = Field(
        default_factory=dict, description="anomaly-rule overrides for every series"
    )

    def limits(self) -> TierLimits:
        base = TIERS[self.tier]
        return TierLimits(
            retention_days=self.retention_days or base.retention_days,
            events_per_second=self.events_per_second or base.events_per_second,
            monthly_quota=self.monthly_quota or base.monthly_quota,
        )


class ApiKeyRecord(_Entity):
    id: str
    project_id: int | None
    scope: Scope
    name: Name
    prefix: str
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    revoked_at: datetime | None = None

    @model_validator(mode="after")
    def _only_admin_keys_span_projects(self) -> ApiKeyRecord:
        if self.project_id is None and self.scope is not Scope.ADMIN:
            raise ValueError("only admin keys may have no project")
        return self


class Schedule(_Entity):
    """Either ``period_s`` (every N seconds) or ``cron`` in an IANA ``tz``."""

    period_s: int | None = Field(None, ge=60)
    cron: str | None = None
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {tz!r}") from None
        return tz

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str | None) -> str | None:
        if cron is not None and not croniter.is_valid(cron):
            raise ValueError(f"not a cron expression: {cron!r}")
        return cron

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if (self.period_s is None) == (self.cron is None):
            raise ValueError("give exactly one of period_s or cron")
        return self


class MaintenanceWindow(_Entity):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("a maintenance window must end after it starts")
        return self


class Monitor(_Entity):
    id: str
    project_id: int
    name: Name
    slug: Slug
    schedule: Schedule
    grace_s: int = Field(300, ge=0)
    max_runtime_s: int | None = Field(None, ge=1)
    tags: list[str] = Field(default_factory=list)
    paused: bool = False
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    thresholds: Overrides = Field(
        default_factory=dict, description="anomaly-rule overrides for this monitor's runs"
    )


ChannelType = Literal["webhook", "slack", "discord", "teams", "email", "pagerduty"]


class Channel(_Entity):
    id: str
    project_id: int
    name: Name
    slug: Slug
    type: ChannelType
    config: dict[str, Any] = Field(default_factory=dict)
    secret: str | None = None
    disabled: bool = False


class AlertRule(_Entity):
    id: str
    project_id: int
    name: Name
    slug: Slug
    channels: list[str] = Field(min_length=1, description="channel ids")
    kinds: list[str] = Field(default_factory=list, description="empty: every kind")
    severities: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    monitors: list[str] = Field(default_factory=list, description="monitor ids")
    muted_until: datetime | None = None


Entity = Project | ApiKeyRecord | Monitor | Channel | AlertRule

MODELS: dict[EntityType, type[_Entity]] = {
    EntityType.PROJECT: Project,
    EntityType.API_KEY: ApiKeyRecord,
    EntityType.MONITOR: Monitor,
    EntityType.CHANNEL: Channel,
    EntityType.RULE: AlertRule,
}


def type_of(entity: Entity) -> EntityType:
    for kind, model in MODELS.items():
        if type(entity) is model:
            return kind
    raise TypeError(f"not a control entity: {type(entity).__name__}")


class ControlRecord(BaseModel):
    """v1 value on ``control.entities``; the key is ``<type>:<id>``, a tombstone deletes."""

    schema_version: Literal[1] = 1
    type: EntityType
    id: str
    data: dict[str, Any]
    updated_at: datetime


SECRET_MASK = "********"


def public(entity: Entity) -> dict[str, Any]:
    """An entity as a client may see it: no key hash, a channel's secret masked."""
    data = entity.model_dump(mode="json")
    if isinstance(entity, ApiKeyRecord):
        data.pop("hash")
    if isinstance(entity, Channel) and entity.secret is not None:
        data["secret"] = SECRET_MASK
    return data


def record_key(kind: EntityType, entity_id: str | int) -> str:
    return f"{kind.value}:{entity_id}"
