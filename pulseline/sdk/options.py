"""Where to send and how: the client's settings, and the gateway URL or DSN they start from."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

EVENTS_PATH = "/v1/events"


@dataclass(frozen=True)
class Target:
    endpoint: str
    key: str


def parse_target(dsn_or_url: str, key: str | None = None) -> Target:
    """``https://gw.example`` plus ``key``, or a DSN ``https://<key>@gw.example``.

    A path is kept as a prefix (a gateway behind a proxy at ``/pulseline``); a URL that
    already ends in ``/v1/events`` is used as it is. An explicit ``key`` wins."""
    parts = urlsplit(dsn_or_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL of the gateway, got {dsn_or_url!r}")
    found = key or (unquote(parts.username) if parts.username else None)
    if not found:
        raise ValueError("no ingest key: pass key=... or put it in the URL as https://<key>@host")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return Target(urlunsplit((parts.scheme, netloc, path, "", "")), found)


@dataclass(frozen=True)
class Options:
    """Every knob, with the defaults ``pulseline.sdk.init`` uses.

    ``flush_interval`` is how long an event may wait for companions before its batch goes;
    ``shutdown_timeout`` bounds the flush at exit. Queue limits are per process.
    """

    release: str | None = None
    environment: str | None = None
    distinct_id: str | None = None
    batch_size: int = 100
    max_request_bytes: int = 1024 * 1024
    flush_interval: float = 1.0
    max_queue_events: int = 10_000
    max_queue_bytes: int = 32 * 1024 * 1024
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 300.0
    timeout: float = 10.0
    shutdown_timeout: float = 2.0
    compress_over_bytes: int | None = 1024
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        for name in ("flush_interval", "timeout", "shutdown_timeout", "backoff_base"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
