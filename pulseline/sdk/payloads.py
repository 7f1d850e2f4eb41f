"""Events as the gateway's ``POST /v1/events`` reads them, built from Python values. Pure.

Shapes follow ``pulseline.families`` (docs/EVENTS.md) and, where they overlap, the
browser SDK (``ingest_gateway/sdk/sdk.js``). Strings are cut to the gateway's limits
here, so an over-long value costs the event a few characters rather than a rejection.
This module must not import pydantic or anything else outside the standard library.
"""

from __future__ import annotations

import math
import os
import platform
import sysconfig
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_SHORT = 200
MAX_URL = 8192
MAX_MESSAGE = 8192
MAX_TITLE = 1000
MAX_OUTPUT = 64 * 1024
MAX_EXCEPTIONS = 100
MAX_FRAMES = 250
MAX_TAGS = 50
LEVELS = frozenset({"fatal", "error", "warning", "info", "debug"})
CHECK_IN_STATUSES = frozenset({"start", "ok", "fail", "log"})
METRIC_TYPES = frozenset({"gauge", "counter"})
UTM_KEYS = ("source", "medium", "campaign", "term", "content")

Json = dict[str, Any]


def cut(text: object, limit: int) -> str:
    return str(text)[:limit]


def _library_paths() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    found = {paths[name] for name in names if name in paths}
    return tuple(sorted(os.path.join(p, "") for p in found))


@dataclass(frozen=True)
class InApp:
    """Which frames are the application's own: what grouping (fingerprint.py) keys on.

    ``include`` and ``exclude`` are module prefixes (``myapp`` matches ``myapp.views``);
    exclude wins. Otherwise a frame is in-app unless its file is under site-packages,
    dist-packages or one of ``library_paths`` (the interpreter's stdlib by default).
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ("pulseline.sdk",)
    library_paths: tuple[str, ...] = field(default_factory=_library_paths)

    def __call__(self, module: str | None, abs_path: str | None) -> bool:
        if module and _matches(module, self.exclude):
            return False
        if module and _matches(module, self.include):
            return True
        if not abs_path:
            return False
        if abs_path.startswith("<"):
            return not abs_path.startswith("<frozen")
        parts = abs_path.replace("\\", "/").split("/")
        if "site-packages" in parts or "dist-packages" in parts:
            return False
        return not abs_path.startswith(self.library_paths)


def _matches(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@dataclass(frozen=True)
class RawFrame:
    module: str | None
    abs_path: str | None
    function: str | None
    lineno: int | None


def raw_frames(tb: TracebackType | None) -> list[RawFrame]:
    """The frames of a traceback, outermost first (so the raising frame is last)."""
    out = []
    for frame, lineno in traceback.walk_tb(tb):
        module = frame.f_globals.get("__name__")
        out.append(
            RawFrame(
                module=module if isinstance(module, str) else None,
                abs_path=frame.f_code.co_filename or None,
                function=frame.f_code.co_qualname,
                lineno=lineno,
            )
        )
    return out


def short_filename(module: str | None, abs_path: str | None) -> str | None:
    """The path from the module's top package on (``app/views.py``), as Sentry shows it."""
    if not abs_path:
        return None
    normal = abs_path.replace("\\", "/")
    if module and not abs_path.startswith("<"):
        top = module.split(".")[0]
        for marker in (f"/{top}/", f"/{top}.py"):
            at = normal.rfind(marker)
            if at >= 0:
                return normal[at + 1 :]
    return normal.rsplit("/", 1)[-1]


def frame_payload(raw: RawFrame, in_app: InApp) -> Json:
    frame: Json = {"in_app": in_app(raw.module, raw.abs_path)}
    filename = short_filename(raw.module, raw.abs_path)
    if filename:
        frame["filename"] = cut(filename, MAX_URL)
    if raw.abs_path:
        frame["abs_path"] = cut(raw.abs_path, MAX_URL)
    if raw.module:
        frame["module"] = cut(raw.module, MAX_SHORT)
    if raw.function:
        frame["function"] = cut(raw.function, MAX_SHORT)
    if raw.lineno is not None and raw.lineno >= 0:
        frame["lineno"] = raw.lineno
    return frame


def _describe(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def exception_value(exc: BaseException, mechanism: Json, in_app: InApp) -> Json:
    kind = type(exc)
    value: Json = {
        "type": cut(kind.__qualname__, MAX_SHORT),
        "value": cut(_describe(exc), MAX_MESSAGE),
        "mechanism": mechanism,
    }
    if kind.__module__ not in ("builtins", "__builtin__"):
        value["module"] = cut(kind.__module__, MAX_SHORT)
    frames = [frame_payload(f, in_app) for f in raw_frames(exc.__traceback__)]
    if frames:
        # The frames nearest the raise decide grouping, so those are the ones kept.
        value["stacktrace"] = {"frames": frames[-MAX_FRAMES:]}
    return value


def exception_chain(exc: BaseException, in_app: InApp, *, handled: bool = True) -> list[Json]:
    """``exc`` and its causes in Sentry's order: the first cause first, ``exc`` last."""
    chain: list[Json] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    mechanism: Json = {"type": "generic", "handled": handled}
    while current is not None and id(current) not in seen and len(chain) < MAX_EXCEPTIONS:
        seen.add(id(current))
        chain.append(exception_value(current, mechanism, in_app))
        if current.__cause__ is not None:
            current, source = current.__cause__, "__cause__"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, source = current.__context__, "__context__"
        else:
            current = None
            continue
        mechanism = {"type": "chained", "source": source}
    chain.reverse()
    return chain


def envelope(
    kind: str,
    attributes: Json,
    *,
    now: datetime | None = None,
    event_id: str | None = None,
    distinct_id: str | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> Json:
    """The event around ``attributes``; the id is fixed here, so retries resend it."""
    event: Json = {
        "kind": kind,
        "event_id": event_id or str(uuid.uuid4()),
        "timestamp": (now or datetime.now(UTC)).isoformat(),
        "attributes": attributes,
    }
    for name, raw in (
        ("distinct_id", distinct_id),
        ("release", release),
        ("environment", environment),
    ):
        if raw is not None:
            event[name] = cut(raw, MAX_SHORT)
    return event


def tags_payload(tags: Mapping[Any, Any]) -> dict[str, str]:
    return {cut(k, MAX_SHORT): cut(v, MAX_SHORT) for k, v in list(tags.items())[:MAX_TAGS]}


RUNTIME: Json = {
    "runtime": {
        "name": platform.python_implementation(),
        "version": platform.python_version(),
    }
}


def error_attributes(
    *,
    exception: list[Json] | None = None,
    message: str | None = None,
    level: str = "error",
    tags: Mapping[Any, Any] | None = None,
    fingerprint: Sequence[str] | None = None,
    user: Mapping[str, Any] | None = None,
    contexts: Mapping[str, Any] | None = None,
    logger: str | None = None,
) -> Json:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, not {level!r}")
    attributes: Json = {"level": level, "platform": "python"}
    if exception:
        attributes["exception"] = exception
    if message is not None:
        attributes["message"] = cut(message, MAX_MESSAGE)
    if not exception and not attributes.get("message"):
        raise ValueError("an error needs an exception or a non-empty message")
    if tags:
        attributes["tags"] = tags_payload(tags)
    if fingerprint:
        attributes["fingerprint"] = [cut(part, MAX_SHORT) for part in fingerprint][:50]
    if user:
        attributes["user"] = dict(user)
    attributes["contexts"] = {**RUNTIME, **(contexts or {})}
    if logger:
        attributes["logger"] = cut(logger, MAX_SHORT)
    return attributes


def event_attributes(name: str, properties: Mapping[str, Any] | None) -> Json:
    if not name:
        raise ValueError("an event needs a name")
    return {"name": cut(name, MAX_SHORT), "properties": dict(properties or {})}


def pageview_attributes(
    url: str,
    *,
    path: str | None = None,
    referrer: str | None = None,
    title: str | None = None,
) -> Json:
    """As the browser SDK sends it: ``path`` and ``utm_*`` come from ``url`` when not given."""
    if not url:
        raise ValueError("a pageview needs a url")
    parts = urlsplit(url)
    attributes: Json = {"url": cut(url, MAX_URL)}
    path = parts.path if path is None else path
    if path:
        attributes["path"] = cut(path, MAX_URL)
    if referrer:
        attributes["referrer"] = cut(referrer, MAX_URL)
    if title is not None:
        attributes["title"] = cut(title, MAX_TITLE)
    query = parse_qs(parts.query)
    for name in UTM_KEYS:
        values = query.get(f"utm_{name}")
        if values and values[0]:
            attributes[f"utm_{name}"] = cut(values[0], MAX_SHORT)
    return attributes


def metric_attributes(
    name: str,
    value: float,
    *,
    type: str = "gauge",
    unit: str | None = None,
    tags: Mapping[Any, Any] | None = None,
) -> Json:
    if not name:
        raise ValueError("a metric needs a name")
    # The gateway refuses booleans and non-finite numbers; better to say so here.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a metric's value must be a finite number, not {value!r}")
    if type not in METRIC_TYPES:
        raise ValueError(f"a metric's type must be 'gauge' or 'counter', not {type!r}")
    attributes: Json = {"name": cut(name, MAX_SHORT), "value": value, "type": type}
    if unit:
        attributes["unit"] = cut(unit, MAX_SHORT)
    if tags:
        attributes["tags"] = tags_payload(tags)
    return attributes


def check_in_attributes(
    monitor: str,
    status: str,
    *,
    run_id: str | None = None,
    duration_ms: float | None = None,
    exit_code: int | None = None,
    output: str | None = None,
    error_type: str | None = None,
) -> Json:
    if not monitor:
        raise ValueError("a check-in needs a monitor slug")
    if status not in CHECK_IN_STATUSES:
        raise ValueError(f"a check-in's status must be one of {sorted(CHECK_IN_STATUSES)}")
    attributes: Json = {"monitor": cut(monitor, MAX_SHORT), "status": status, "source": "sdk"}
    if run_id is not None:
        attributes["run_id"] = cut(run_id, MAX_SHORT)
    if duration_ms is not None:
        attributes["duration_ms"] = max(0.0, float(duration_ms))
    if exit_code is not None:
        attributes["exit_code"] = int(exit_code)
    if output is not None:
        attributes["output"] = cut(output, MAX_OUTPUT)
    if error_type is not None:
        attributes["error_type"] = cut(error_type, MAX_SHORT)
    return attributes
