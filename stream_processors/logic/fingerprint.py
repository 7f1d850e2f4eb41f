"""Error grouping: which issue an ``error`` event belongs to. Pure: no Faust.

``group(attributes)`` picks the grouping components by the first rule that applies:

1. ``client``: the event's own ``fingerprint`` list; the entry ``{{ default }}`` is
   replaced by the components rules 2-4 would have chosen.
2. ``stacktrace``: the outermost exception's type (the last in the list, as Sentry
   orders them) plus its in-app frames, each as ``file:function``. Files lose URL
   hosts, directories, query strings, ``:line:col`` suffixes and bundler hash or
   version segments (``app.3f2a1b.js`` -> ``app.js``); functions lose anonymous
   markers, ``[as x]`` aliases and memory addresses. Skipped when no frame is in-app.
3. ``exception_message``: the exception type plus its normalised message.
4. ``message``: the normalised message alone.

Normalising a message replaces variable parts with placeholders: ``<url>``,
``<email>``, ``<uuid>``, ``<ip>`` (v4 and v6), ``<path>``, ``<hex>``, ``<float>``
and ``<int>``. The hash is BLAKE2b-128 of the JSON-encoded components, so a client
fingerprint of just ``{{ default }}`` hashes the same as default grouping.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Rule = Literal["client", "stacktrace", "exception_message", "message"]
TITLE_MAX = 120
# Messages are grouped on their start: some placeholder patterns are quadratic in a long
# run of word characters and dots ("a.a.a…" of 10,000 characters took 0.7 s), and one
# event must not stall its partition.
GROUPED_MESSAGE_CHARS = 4096


class NotGroupable(ValueError):
    """The event has neither an exception nor a message to group by."""


@dataclass(frozen=True)
class Grouping:
    hash: str
    components: tuple[str, ...]
    rule: Rule
    title: str
    culprit: str | None


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")
_EMAIL = re.compile(r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\b")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:])[0-9a-fA-F:]*:[0-9a-fA-F:]*(?:\d+\.\d+\.\d+\.\d+)?")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_PATH = re.compile(r"(?<![\w/<>])(?:~|[A-Za-z]:)?[/\\][\w.\-~]+(?:[/\\][\w.\-~]*)*")
_HEX = re.compile(
    r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"
)
_FLOAT = re.compile(r"\d+\.\d+")
_INT = re.compile(r"\d+")


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return "<ip>"


def normalize_message(text: str) -> str:
    """The message's first ``GROUPED_MESSAGE_CHARS``, variable parts replaced by placeholders."""
    text = text[:GROUPED_MESSAGE_CHARS]
    text = _URL.sub("<url>", text)
    text = _EMAIL.sub("<email>", text)
    text = _UUID.sub("<uuid>", text)
    text = _IPV6_CANDIDATE.sub(_ipv6, text)
    text = _IPV4.sub("<ip>", text)
    text = _PATH.sub("<path>", text)
    text = _HEX.sub("<hex>", text)
    text = _FLOAT.sub("<float>", text)
    return _INT.sub("<int>", text).strip()


_LINE_COL = re.compile(r"(?::\d+){1,2}$")
_HASH_SEGMENT = re.compile(r"[.\-_](?=[0-9a-zA-Z]*\d)[0-9a-zA-Z]{6,}(?=\.)")
_VERSION_SEGMENT = re.compile(r"[.\-_@]v?\d+(?:\.\d+)+(?=(?:\.[A-Za-z]\w*)+$)")


def normalize_filename(name: str) -> str:
    """A stable file name: no host, directory, query, line numbers or bundler hash."""
    name = re.split(r"[?#]", name, maxsplit=1)[0]
    name = _LINE_COL.sub("", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _VERSION_SEGMENT.sub("", name)
    return _HASH_SEGMENT.sub("", name)


_ANONYMOUS = {"<anonymous>", "anonymous", "?", "<unknown>", "<lambda>", "(anonymous)"}
_ADDRESS = re.compile(r"\s*(?:at\s+)?0x[0-9a-fA-F]+")
_ALIAS = re.compile(r"\s*\[as [^\]]*\]")
_PREFIX = re.compile(r"^(?:async|new)\s+")


def normalize_function(name: str) -> str:
    """A stable function name; anonymous functions become the empty string."""
    name = _ALIAS.sub("", _ADDRESS.sub("", name)).strip()
    name = _PREFIX.sub("", name).rstrip("/<")
    parts = [p for p in name.split(".") if p not in _ANONYMOUS]
    return ".".join(parts)


def _frame_component(frame: Mapping[str, Any]) -> str:
    module = frame.get("module")
    where = frame.get("filename") or frame.get("abs_path") or ""
    file = str(module) if module else normalize_filename(str(where))
    return f"{file}:{normalize_function(str(frame.get('function') or ''))}"


def _in_app_frames(exc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    trace = exc.get("stacktrace") or {}
    frames = trace.get("frames") if isinstance(trace, Mapping) else None
    if not isinstance(frames, Sequence):
        return []
    return [f for f in frames if isinstance(f, Mapping) and f.get("in_app") is True]


def _outermost(attributes: Mapping[str, Any]) -> Mapping[str, Any] | None:
    chain = attributes.get("exception")
    if isinstance(chain, Mapping):
        chain = chain.get("values")
    if isinstance(chain, Sequence) and chain and isinstance(chain[-1], Mapping):
        return chain[-1]
    return None


def _default(attributes: Mapping[str, Any]) -> tuple[Rule, list[str]]:
    exc = _outermost(attributes)
    message = str(attributes.get("message") or "")
    if exc is not None:
        kind = str(exc.get("type") or "Error")
        frames = _in_app_frames(exc)
        if frames:
            return "stacktrace", [kind, *(_frame_component(f) for f in frames)]
        if exc.get("type"):
            return "exception_message", [kind, normalize_message(str(exc.get("value") or message))]
        message = message or str(exc.get("value") or "")
    if message.strip():
        return "message", [normalize_message(message)]
    raise NotGroupable("an error needs an exception or a message")


def _default_or_nothing(attributes: Mapping[str, Any]) -> list[str]:
    try:
        return _default(attributes)[1]
    except NotGroupable:
        return []


def _client(attributes: Mapping[str, Any]) -> list[str] | None:
    raw = attributes.get("fingerprint")
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        return None
    return [str(x) for x in raw]


def _is_default_marker(text: str) -> bool:
    return re.fullmatch(r"\{\{\s*default\s*\}\}", text.strip()) is not None


def _title(attributes: Mapping[str, Any]) -> str:
    exc = _outermost(attributes)
    value = str((exc or {}).get("value") or attributes.get("message") or "").strip()
    first = value.splitlines()[0] if value else ""
    kind = str(exc.get("type") or "") if exc else ""
    title = f"{kind}: {first}" if kind and first else kind or first or "<unlabeled event>"
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def _culprit(attributes: Mapping[str, Any]) -> str | None:
    exc = _outermost(attributes)
    frames = _in_app_frames(exc) if exc else []
    if not frames:
        return None
    top = frames[-1]
    file = normalize_filename(str(top.get("filename") or top.get("module") or ""))
    function = normalize_function(str(top.get("function") or ""))
    return f"{file} in {function}" if function else file


def group(attributes: Mapping[str, Any]) -> Grouping:
    """Group one error event's attributes; raises ``NotGroupable`` when nothing to group by."""
    client = _client(attributes)
    if client is not None:
        needs_default = any(_is_default_marker(x) for x in client)
        default = _default_or_nothing(attributes) if needs_default else []
        components: list[str] = []
        for part in client:
            components.extend(default if _is_default_marker(part) else [part])
        rule: Rule = "client"
    else:
        rule, components = _default(attributes)
    encoded = json.dumps(components, separators=(",", ":")).encode()
    return Grouping(
        hash=hashlib.blake2b(encoded, digest_size=16).hexdigest(),
        components=tuple(components),
        rule=rule,
        title=_title(attributes),
        culprit=_culprit(attributes),
    )
