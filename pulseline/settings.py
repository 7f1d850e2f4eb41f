"""One typed settings object per service, read from ``PULSELINE_*`` variables.

Settings take the environment as an argument (``Settings.from_env(env)``), so tests
pass a dict and nothing deep in the code reads ``os.environ``. A bad value fails at
boot with a ``ConfigError`` that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PREFIX = "PULSELINE_"


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


def env_var(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        source = os.environ if env is None else env
        values: dict[str, Any] = {
            name: source[env_var(name)] for name in cls.model_fields if env_var(name) in source
        }
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = [
                f"{env_var(str(err['loc'][0]))}: {err['msg']} (got {err.get('input')!r})"
                for err in exc.errors()
            ]
            raise ConfigError("invalid configuration: " + "; ".join(problems)) from None

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with secrets masked, keyed by variable name."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            out[env_var(name)] = value
        return out


class CommonSettings(_Settings):
    data_dir: Path = Field(Path(".pulseline"), description="Where local state lives")
    kafka_bootstrap: str | None = Field(None, description="External Kafka; unset = local broker")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Port of the bundled local broker")
    kafka_request_timeout_s: float = Field(5.0, gt=0)
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="Namespace for topics")
    partitions: int = Field(6, ge=1, le=1024, description="Partitions of each new topic")
    replication_factor: int = Field(1, ge=1, le=7)
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None


class LocalKafkaSettings(CommonSettings):
    kafka_version: str = Field("4.3.1", pattern=r"^\d+\.\d+\.\d+$")
    kafka_heap: str = Field("512m", pattern=r"^\d+[mMgG]$")
    kafka_start_timeout_s: float = Field(60.0, gt=0)
    kafka_dist_dir: Path | None = Field(None, description="Cache of assembled brokers")

    @property
    def controller_port(self) -> int:
        return self.kafka_port + 1


class RunSettings(LocalKafkaSettings):
    seed_file: Path | None = Field(None, description="pulseline.yaml to apply at start")

    def seed_path(self) -> Path | None:
        if self.seed_file is not None:
            return self.seed_file
        default = Path("pulseline.yaml")
        return default if default.exists() else None


class GatewaySettings(CommonSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8000, ge=1, le=65535)
    produce_timeout_s: float = Field(5.0, gt=0, description="Longest wait for a Kafka ack")
    produce_linger_s: float = Field(
        0.002, ge=0, le=1, description="How long records wait to share a Kafka batch"
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with a 503")
    max_request_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="after inflating")
    max_compressed_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="as sent")
    max_event_bytes: int = Field(1024 * 1024, ge=256)
    max_batch_events: int = Field(10_000, ge=1)
    max_event_age_days: int = Field(365, ge=1, description="older timestamps are rejected")
    ping_body_limit_bytes: int = Field(
        32 * 1024,
        ge=0,
        description="ping body kept: the cron wrapper's 32 KiB tail (Healthchecks keeps 10,000)",
    )
    trusted_proxies: str = Field(
        "", description="comma-separated CIDRs whose X-Forwarded-For is believed; empty = none"
    )
    rate_limits_enabled: bool = Field(True, description="429 over a project's rate or quota")
    rate_limit_burst_s: float = Field(2.0, gt=0, description="bucket size, in seconds of rate")
    gateway_replicas: int = Field(1, ge=1, description="each replica enforces 1/N of a limit")
    gateway_workers: int = Field(
        1, ge=1, le=64, description="gateway processes sharing the port (each a share of limits)"
    )
    default_events_per_second: int | None = Field(
        None, ge=1, description="for projects the control plane does not know; unset = no limit"
    )
    default_monthly_quota: int | None = Field(
        None, ge=1, description="for projects the control plane does not know; unset = no quota"
    )
    scrub_pii: bool = Field(
        True, description="replace secrets and card numbers in attributes with [Filtered]"
    )
    scrub_extra_fields: str = Field(
        "", description="comma-separated key names scrubbed besides password, token, ..."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ip_network(part.strip(), strict=False)  # its ValueError names the entry
        return value


class StorageSettings(CommonSettings):
    clickhouse_url: str = Field("", description="chdb://<dir> (default) or http(s)://host:8123")
    clickhouse_database: str = Field("pulseline", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    sink_group: str = "pulseline-sink"
    sink_batch_rows: int = Field(50_000, ge=1)
    sink_flush_interval_s: float = Field(1.0, gt=0)
    sink_retry_max_s: float = Field(30.0, gt=0, description="Longest back-off between retries")
    sink_insert_deduplication: bool = Field(
        True,
        description="Send each batch's insert_deduplication_token so a replayed batch is "
        "dropped; false = no token and block deduplication off (fault tests' negative control)",
    )
    sink_crash_after_insert: int = Field(
        0,
        ge=0,
        description="Fault injection for tests: exit hard (os._exit 70) right after the Nth "
        "insert, before its offsets are committed; 0 = never",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(8001, ge=1, le=65535)
    api_max_page_size: int = Field(1000, ge=1)
    clickhouse_cluster: str = Field(
        "",
        pattern=r"^([A-Za-z_][A-Za-z0-9_-]*)?$",
        description="ClickHouse cluster name; set = replicated tables ON CLUSTER, Distributed",
    )

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")


class ProcessorSettings(CommonSettings):
    processors_app_id: str = "pulseline-processors"
    processors_emit_interval_s: float = Field(1.0, gt=0)
    processors_web_port: int = Field(6066, ge=1, le=65535)
    processors_web_host: str = Field("127.0.0.1", description="Bind address of /metrics")

    @property
    def app_id(self) -> str:
        return f"{self.topic_prefix}{self.processors_app_id}"


class AlertingSettings(CommonSettings):
    alerting_group: str = Field("pulseline-alerting", description="Consumer group (prefixed)")
    alerting_allow_private_networks: bool = Field(
        False, description="Allow webhooks to private addresses (metadata stays refused)"
    )
    alerting_timeout_s: float = Field(10.0, gt=0, le=120, description="Per HTTP attempt")
    alerting_per_channel: int = Field(4, ge=1, le=100, description="Attempts in flight/channel")
    alerting_reminder_interval_s: float = Field(
        24 * 3600, ge=0, description="Re-send open incidents this often; 0 = never"
    )
    alerting_reminder_check_s: float = Field(60.0, gt=0, description="How often to look")
    alerting_smtp_host: str = Field("", description="SMTP relay; empty = email channels fail")
    alerting_smtp_port: int = Field(587, ge=1, le=65535)
    alerting_smtp_user: str = ""
    alerting_smtp_password: SecretStr = SecretStr("")
    alerting_smtp_starttls: bool = True
    alerting_smtp_from: str = "pulseline@localhost"
    alerting_metrics_host: str = Field("127.0.0.1", description="Bind address of /metrics")
    alerting_metrics_port: int = Field(6067, ge=0, le=65535, description="0 = no endpoint")
    alerting_digest_window_s: float = Field(
        1.0, ge=0, le=60, description="Hold transitions this long to group bursts; 0 = never"
    )
    alerting_digest_min: int = Field(
        3, ge=2, le=10_000, description="Transitions for one channel in a window that make a digest"
    )
    alerting_failure_threshold: int = Field(
        1, ge=1, le=100, description="Consecutive monitor failures before the first alert"
    )

    @property
    def group_id(self) -> str:
        return f"{self.topic_prefix}{self.alerting_group}"
