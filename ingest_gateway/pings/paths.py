"""Parse the part of a ping URL after ``/ping/``, the way Healthchecks routes it. Pure.

Healthchecks (``hc/api/urls.py``) tries, in order::

    ping/<uuid:code>                         success
    ping/<uuid:code>/                        success
    ping/<uuid:code>/fail | start | log      that action
    ping/<uuid:code>/<int:exitstatus>        0 success, else fail
    ping/<slug:ping_key>/<slug:slug>         success
    ping/<slug:ping_key>/<slug:slug>/fail | start | log | <int:exitstatus>

with Django's converters: ``uuid`` is lower-case hex only, ``slug`` is
``[-a-zA-Z0-9_]+``, ``int`` is ``[0-9]+``. Anything else matches no route (404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Action = Literal["success", "start", "fail", "log"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_INT = re.compile(r"[0-9]+")
_ACTIONS: dict[str, Action] = {"start": "start", "fail": "fail", "log": "log"}


@dataclass(frozen=True, slots=True)
class ByUuid:
    code: str
    action: Action = "success"
    exit_status: int | None = None


@dataclass(frozen=True, slots=True)
class BySlug:
    ping_key: str
    slug: str
    action: Action = "success"
    exit_status: int | None = None


Target = ByUuid | BySlug


def _suffix(part: str) -> tuple[Action, int | None] | None:
    if part in _ACTIONS:
        return _ACTIONS[part], None
    if _INT.fullmatch(part):
        return "success", int(part)  # may be > 255: the view answers 400, not the router
    return None


def parse(rest: str) -> Target | None:
    """The ping target of ``rest`` (the path after ``/ping/``), None when no route matches."""
    parts = rest.split("/")
    first = parts[0]
    if _UUID.fullmatch(first):
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):
            return ByUuid(first)
        if len(parts) == 2 and (suffix := _suffix(parts[1])) is not None:
            return ByUuid(first, *suffix)
    if len(parts) not in (2, 3) or not all(_SLUG.fullmatch(p) for p in parts):
        return None
    if len(parts) == 2:
        return BySlug(parts[0], parts[1])
    suffix = _suffix(parts[2])
    return None if suffix is None else BySlug(parts[0], parts[1], *suffix)
