"""Turn Sentry payloads (event, transaction, check-in) into Pulseline ``EventIn`` dicts.

Pure and forgiving: a field of the wrong shape is dropped, not the event (Sentry SDKs
of every age and language send slightly different shapes); fields that end up None
are left out. The ``attributes`` carry each family's payload under fixed names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

JSON = dict[str, Any]

# EventIn's short string fields (distinct_id, release, environment) allow 200 characters.
MAX_SHORT = 200
_FRAME_FIELDS = ("filename", "abs_path", "function", "module", "lineno", "colno", "in_app")
_CHECK_IN_STATUS = {"in_progress": "start", "ok": "ok", "error": "fail"}


def _compact(values: Mapping[str, Any]) -> JSON:
    return {k: v for k, v in values.items() if v is not None}


def _dict(value: Any) -> JSON | None:
    return value if isinstance(value, dict) else None


def _short(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)[:MAX_SHORT]


def event_uuid(value: Any) -> UUID | None:
    """A Sentry event id (32 hex digits, or a dashed UUID); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return UUID(value.strip())
    except ValueError:
        return None


def to_datetime(value: Any) -> datetime | None:
    """Sentry timestamps are epoch seconds (a float) or ISO 8601 (UTC when unzoned)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _values(value: Any) -> list[Any] | None:
    """Sentry sends some lists bare or as ``{"values": [...]}``."""
    if isinstance(value, dict):
        value = value.get("values")
    return value if isinstance(value, list) else None


def _tags(value: Any) -> JSON | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        pairs = (p for p in value if isinstance(p, list | tuple) and len(p) == 2)
        return {str(k): v for k, v in pairs}
    return None


def _message(event: JSON) -> str | None:
    for name in ("logentry", "message"):
        value = event.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):
            for field in ("formatted", "message"):
                if isinstance(value.get(field), str) and value[field]:
                    return str(value[field])
    return None


def _frame(frame: Any) -> JSON | None:
    if not isinstance(frame, dict):
        return None
    return _compact({name: frame.get(name) for name in _FRAME_FIELDS})


def _exception(value: Any) -> JSON | None:
    if not isinstance(value, dict):
        return None
    stack = _dict(value.get("stacktrace"))
    frames = _values(stack.get("frames")) if stack else None
    stacktrace = None
    if frames is not None:
        stacktrace = {"frames": [f for f in map(_frame, frames) if f is not None]}
    return _compact(
        {
            "type": value.get("type"),
            "value": value.get("value"),
            "module": value.get("module"),
            "mechanism": value.get("mechanism"),
            "stacktrace": stacktrace,
        }
    )


def _distinct_id(user: JSON | None) -> str | None:
    if not user:
        return None
    for name in ("id", "email", "ip_address"):
        value = _short(user.get(name))
        if value and value != "{{auto}}":
            return value
    return None


def _common(event: JSON, kind: str, fallback_id: Any = None) -> JSON:
    return _compact(
        {
            "kind": kind,
            "event_id": event_uuid(event.get("event_id")) or event_uuid(fallback_id),
            "timestamp": to_datetime(event.get("timestamp")),
            "release": _short(event.get("release")),
            "environment": _short(event.get("environment")),
            "distinct_id": _distinct_id(_dict(event.get("user"))),
        }
    )


def error_event(event: JSON, fallback_id: Any = None) -> JSON:
    """A Sentry error (or message) event as an ``error`` EventIn dict."""
    exceptions = _values(event.get("exception"))
    attributes = _compact(
        {
            "exception": None
            if exceptions is None
            else [e for e in map(_exception, exceptions) if e is not None],
            "message": _message(event),
            "level": event.get("level"),
            "logger": event.get("logger"),
            "platform": event.get("platform"),
            "tags": _tags(event.get("tags")),
            "contexts": _dict(event.get("contexts")),
            "breadcrumbs": _values(event.get("breadcrumbs")),
            "fingerprint": event.get("fingerprint"),
            "user": _dict(event.get("user")),
            "request": _dict(event.get("request")),
            "sdk": _dict(event.get("sdk")),
        }
    )
    return {**_common(event, "error", fallback_id), "attributes": attributes}


def _http_status(contexts: JSON, tags: JSON | None) -> int | None:
    response = _dict(contexts.get("response")) or {}
    value = response.get("status_code")
    if value is None and tags:
        value = tags.get("http.status_code")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def transaction_event(event: JSON, fallback_id: Any = None) -> JSON:
    """A Sentry transaction as a ``transaction`` EventIn dict."""
    contexts = _dict(event.get("contexts")) or {}
    trace = _dict(contexts.get("trace")) or {}
    request = _dict(event.get("request")) or {}
    start = to_datetime(event.get("start_timestamp"))
    end = to_datetime(event.get("timestamp"))
    duration_ms = None
    if start is not None and end is not None:
        duration_ms = (end - start).total_seconds() * 1000
    spans = event.get("spans")
    attributes = _compact(
        {
            "name": event.get("transaction"),
            "op": trace.get("op"),
            "method": request.get("method"),
            "status": trace.get("status"),
            "start": _iso(start),
            "duration_ms": duration_ms,
            "trace_id": trace.get("trace_id"),
            "span_id": trace.get("span_id"),
            "http_status": _http_status(contexts, _tags(event.get("tags"))),
            "spans_count": len(spans) if isinstance(spans, list) else 0,
        }
    )
    return {**_common(event, "transaction", fallback_id), "attributes": attributes}


def check_in_event(check_in: JSON) -> JSON:
    """A Sentry cron check-in as a ``check_in`` EventIn dict (the gateway assigns its id)."""
    status = check_in.get("status")
    duration = check_in.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        duration = None
    attributes = _compact(
        {
            "monitor": check_in.get("monitor_slug"),
            "status": _CHECK_IN_STATUS.get(status, status) if isinstance(status, str) else None,
            "run_id": check_in.get("check_in_id"),
            "duration_ms": None if duration is None else duration * 1000,
        }
    )
    return _compact(
        {
            "kind": "check_in",
            "release": _short(check_in.get("release")),
            "environment": _short(check_in.get("environment")),
            "attributes": attributes,
        }
    )
