"""What ``pulseline wrap`` sends: its configuration and the two ping requests. Pure.

The pings are the gateway's Healthchecks-style routes (``ingest_gateway/pings``):

- ``POST {url}/ping/{ping_key}/{slug}/start?rid=…`` when the job starts;
- ``POST {url}/ping/{ping_key}/{slug}/{exit_code}?rid=…`` when it ends, the body being the
  redacted output tail (0 is a success, anything else a failure);

or ``{url}/ping/{monitor_id}/…`` when the monitor is given by its id. ``create=1`` makes
a missing slug's monitor. ``duration_ms`` and ``output_size`` ride along as query
parameters, and the gateway stores them in place of its own figures (a run timed by its
two pings; the size of the body it got, which is only the tail).

A bad setting never stops the job: it is reported as a warning and its default is used.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pulseline.producers.tail import DEFAULT_CAPTURE_BYTES
from pulseline.producers.wrap_slug import derive_slug, is_monitor_id, is_ping_slug

DEFAULT_TIMEOUT_S = 5.0
URL_VARS = ("PULSELINE_URL", "PULSELINE_GATEWAY")
PING_KEY_VAR = "PULSELINE_PING_KEY"
CAPTURE_VAR = "PULSELINE_WRAP_CAPTURE_BYTES"
TIMEOUT_VAR = "PULSELINE_WRAP_TIMEOUT_S"
CREATE_VAR = "PULSELINE_WRAP_CREATE"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Flags:
    """The command line's options; None where an option was not given."""

    url: str | None = None
    ping_key: str | None = None
    monitor: str | None = None
    capture_bytes: int | None = None
    timeout_s: float | None = None
    create: bool | None = None


@dataclass(frozen=True, slots=True)
class WrapConfig:
    url: str | None
    ping_key: str | None
    monitor: str
    capture_bytes: int = DEFAULT_CAPTURE_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    create: bool = True


@dataclass(frozen=True, slots=True)
class Ping:
    url: str
    params: dict[str, str]
    body: bytes = b""


def _number(
    raw: str | None, name: str, default: float, parse: type[int] | type[float], least: float
) -> tuple[float, str | None]:
    if raw is None:
        return default, None
    try:
        value = parse(raw)
    except ValueError:
        value = least - 1
    if not value >= least:  # also NaN
        return default, f"{name}={raw!r} is not a number >= {least:g}; using {default:g}"
    return value, None


def resolve(
    flags: Flags, command: Sequence[str], env: Mapping[str, str]
) -> tuple[WrapConfig, list[str]]:
    """The configuration (flags over environment over defaults) and what was wrong in it."""
    problems: list[str] = []
    url = flags.url or next((env[v] for v in URL_VARS if env.get(v)), None)
    capture, problem = _number(
        env.get(CAPTURE_VAR), CAPTURE_VAR, DEFAULT_CAPTURE_BYTES, int, least=0
    )
    problems += [problem] if problem else []
    timeout, problem = _number(env.get(TIMEOUT_VAR), TIMEOUT_VAR, DEFAULT_TIMEOUT_S, float, 0.1)
    problems += [problem] if problem else []
    create = True
    raw_create = env.get(CREATE_VAR)
    if raw_create is not None and raw_create.strip().lower() in _FALSE:
        create = False
    elif raw_create is not None and raw_create.strip().lower() not in _TRUE:
        problems.append(f"{CREATE_VAR}={raw_create!r} is not 1 or 0; using 1")
    config = WrapConfig(
        url=url.rstrip("/") if url else None,
        ping_key=flags.ping_key or env.get(PING_KEY_VAR) or None,
        monitor=flags.monitor or derive_slug(shlex.join(command)),
        capture_bytes=int(capture) if flags.capture_bytes is None else flags.capture_bytes,
        timeout_s=timeout if flags.timeout_s is None else flags.timeout_s,
        create=create if flags.create is None else flags.create,
    )
    return config, problems


def target(config: WrapConfig) -> tuple[str | None, str | None]:
    """The monitor's ping URL, or None and why there is none."""
    if config.url is None:
        return None, f"no server URL (set {URL_VARS[0]} or pass --url)"
    if is_monitor_id(config.monitor):
        return f"{config.url}/ping/{config.monitor}", None
    if not is_ping_slug(config.monitor):
        return None, f"monitor {config.monitor!r} is not a slug ([-a-zA-Z0-9_]+) or a monitor id"
    if not config.ping_key:
        return None, f"no ping key (set {PING_KEY_VAR} or pass --ping-key)"
    if not is_ping_slug(config.ping_key):
        return None, "the ping key has characters other than [-a-zA-Z0-9_]"
    return f"{config.url}/ping/{config.ping_key}/{config.monitor}", None


def _params(config: WrapConfig, rid: str) -> dict[str, str]:
    params = {"rid": rid}
    if config.create and not is_monitor_id(config.monitor):
        params["create"] = "1"
    return params


def start_ping(url: str, config: WrapConfig, rid: str) -> Ping:
    return Ping(f"{url}/start", _params(config, rid))


def finish_ping(
    url: str,
    config: WrapConfig,
    rid: str,
    *,
    exit_code: int,
    duration_s: float,
    output_size: int,
    body: bytes,
) -> Ping:
    params = _params(config, rid) | {
        "duration_ms": str(round(duration_s * 1000)),
        "output_size": str(output_size),
    }
    return Ping(f"{url}/{exit_code}", params, body)


def shown(url: str, config: WrapConfig) -> str:
    """``url`` with the ping key masked, for messages."""
    return url.replace(config.ping_key, "<ping-key>") if config.ping_key else url
