"""Turn Sentry payloads (event, transaction, check-in) into Pulseline ``EventIn`` dicts.

Pure and forgiving: a field of the wrong shape is dropped, not the event (Sentry SDKs
of every age and language send slightly different shapes); fields that end up None
are left out. The ``attributes`` carry each family's payload under fixed names.
Lists and texts longer than the family allows (``pulseline.families``) are trimmed
as Sentry trims them: the newest breadcrumbs and both ends of a deep stack are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pulseline import families

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
    """Tags as the family wants them: short strings; numbers and booleans become text."""
    if isinstance(value, dict):
        pairs: Any = value.items()
    elif isinstance(value, list):
        pairs = (p for p in value if isinstance(p, list | tuple) and len(p) == 2)
    else:
        return None
    tags = {
        str(k)[: families.MAX_SHORT]: str(v)[: families.MAX_SHORT]
        for k, v in pairs
        if isinstance(v, str | int | float)
    }
    return dict(list(tags.items())[: families.MAX_TAGS])


def _text(value: Any, limit: int = families.MAX_MESSAGE) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _ends(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` items, from both ends: where it was called and where it broke."""
    if len(items) <= limit:
        return items
    head = limit // 2
    return items[:head] + items[len(items) - (limit - head) :]


def _hex(value: Any, digits: int) -> str | None:
    """A trace or span id, or None: a malformed id should not cost the transaction."""
    if isinstance(value, str) and len(value) == digits:
        try:
            int(value, 16)
        except ValueError:
            return None
        return value
    return None


def _fingerprint(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    parts = [str(p)[: families.MAX_SHORT] for p in value if isinstance(p, str | int | float)]
    return parts[: families.MAX_FINGERPRINT]


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
        kept = [f for f in map(_frame, frames) if f is not None]
        stacktrace = {"frames": _ends(kept, families.MAX_FRAMES)}
    return _compact(
        {
            "type": value.get("type"),
            "value": _text(value.get("value")),
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
    breadcrumbs = _values(event.get("breadcrumbs"))
    attributes = _compact(
        {
            "exception": None
            if exceptions is None
            else [e for e in map(_exception, exceptions) if e is not None][
                -families.MAX_EXCEPTIONS :
            ],
            "message": _text(_message(event)),
            "level": event.get("level"),
            "logger": event.get("logger"),
            "platform": event.get("platform"),
            "tags": _tags(event.get("tags")),
            "contexts": _dict(event.get("contexts")),
            "breadcrumbs": None
            if breadcrumbs is None
            else [b for b in breadcrumbs if isinstance(b, dict)][-families.MAX_BREADCRUMBS :],
            "fingerprint": _fingerprint(event.get("fingerprint")),
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
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 100 <= value <= 599 else None


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
            "trace_id": _hex(trace.get("trace_id"), 32),
            "span_id": _hex(trace.get("span_id"), 16),
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
