"""Pulseline's Python SDK: errors, messages, product events, page views, metrics, check-ins.

    import pulseline.sdk as pulseline

    pulseline.init("https://gw.example", key="pl_ingest_...", release="1.4.2")
    try:
        work()
    except Exception:
        pulseline.capture_exception()

    @pulseline.monitor("nightly-backup")
    def backup() -> None: ...

Standard library and httpx only. The module-level functions use the client ``init`` made
(before ``init``, or with a ``None`` URL, they do nothing); a ``Client`` can also be used
on its own. See docs/SDK.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulseline.sdk.client import Client, Stats
from pulseline.sdk.monitor import Monitor, Run
from pulseline.sdk.options import Options

__all__ = [
    "Client",
    "Monitor",
    "Options",
    "Run",
    "Stats",
    "capture_exception",
    "capture_message",
    "check_in",
    "close",
    "flush",
    "get_client",
    "init",
    "metric",
    "monitor",
    "pageview",
    "track",
]

_client: Client | None = None


def init(dsn_or_url: str | None, key: str | None = None, **options: Any) -> Client:
    """Make the process-wide client (closing the previous one); ``options`` are the fields
    of ``Options``. Raises ``ValueError`` for a URL or option it cannot use."""
    global _client
    client = Client(dsn_or_url, key, **options)
    previous, _client = _client, client
    if previous is not None:
        previous.close()
    return client


def get_client() -> Client | None:
    return _client


def capture_exception(
    exc: BaseException | None = None,
    *,
    level: str = "error",
    handled: bool = True,
    tags: Mapping[str, Any] | None = None,
    fingerprint: Sequence[str] | None = None,
    user: Mapping[str, Any] | None = None,
    contexts: Mapping[str, Any] | None = None,
    distinct_id: str | None = None,
) -> str | None:
    client = _client
    if client is None:
        return None
    return client.capture_exception(
        exc,
        level=level,
        handled=handled,
        tags=tags,
        fingerprint=fingerprint,
        user=user,
        contexts=contexts,
        distinct_id=distinct_id,
    )


def capture_message(
    message: str,
    level: str = "info",
    *,
    tags: Mapping[str, Any] | None = None,
    fingerprint: Sequence[str] | None = None,
    user: Mapping[str, Any] | None = None,
    contexts: Mapping[str, Any] | None = None,
    logger: str | None = None,
    distinct_id: str | None = None,
) -> str | None:
    client = _client
    if client is None:
        return None
    return client.capture_message(
        message,
        level,
        tags=tags,
        fingerprint=fingerprint,
        user=user,
        contexts=contexts,
        logger=logger,
        distinct_id=distinct_id,
    )


def track(
    event: str, properties: Mapping[str, Any] | None = None, *, distinct_id: str | None = None
) -> str | None:
    client = _client
    return None if client is None else client.track(event, properties, distinct_id=distinct_id)


def pageview(
    url: str,
    *,
    path: str | None = None,
    referrer: str | None = None,
    title: str | None = None,
    distinct_id: str | None = None,
) -> str | None:
    client = _client
    if client is None:
        return None
    return client.pageview(url, path=path, referrer=referrer, title=title, distinct_id=distinct_id)


def metric(
    name: str,
    value: float,
    *,
    type: str = "gauge",
    unit: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> str | None:
    client = _client
    if client is None:
        return None
    return client.metric(name, value, type=type, unit=unit, tags=tags)


def check_in(
    monitor: str,
    status: str = "ok",
    *,
    run_id: str | None = None,
    duration_ms: float | None = None,
    exit_code: int | None = None,
    output: str | None = None,
    error_type: str | None = None,
) -> str | None:
    client = _client
    if client is None:
        return None
    return client.check_in(
        monitor,
        status,
        run_id=run_id,
        duration_ms=duration_ms,
        exit_code=exit_code,
        output=output,
        error_type=error_type,
    )


def monitor(slug: str) -> Monitor:
    """Reports to the client current when each run starts, so it may decorate at import."""
    return Monitor(slug, get_client)


def flush(timeout: float | None = None) -> bool:
    client = _client
    return True if client is None else client.flush(timeout)


def close(timeout: float | None = None) -> bool:
    global _client
    client, _client = _client, None
    return True if client is None else client.close(timeout)
