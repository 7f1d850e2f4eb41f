"""Map one ping to the ``check_in`` EventIn dict the Stamper takes. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ingest_gateway.pings.paths import Action

Status = Literal["start", "ok", "fail", "log"]


@dataclass(frozen=True, slots=True)
class PingBody:
    """The first ``limit`` bytes of a body (``head``) and the body's full length."""

    head: bytes
    size: int


@dataclass(frozen=True, slots=True)
class Reported:
    """What the pinger measured itself (query parameters ``duration_ms``, ``output_size``)."""

    duration_ms: int | None = None
    output_size: int | None = None

    def attributes(self) -> dict[str, int]:
        found = {"duration_ms": self.duration_ms, "output_size": self.output_size}
        return {name: value for name, value in found.items() if value is not None}


def status_of(action: Action, exit_status: int | None) -> Status:
    """As Healthchecks: a non-zero exit status is a failure whatever the action."""
    if exit_status is not None and exit_status > 0:
        return "fail"
    return "ok" if action == "success" else action


def check_in(
    *,
    monitor_slug: str,
    monitor_id: str,
    status: Status,
    exit_code: int | None,
    run_id: str | None,
    body: PingBody,
    method: str,
    user_agent: str,
    reported: Reported | None = None,
) -> dict[str, Any]:
    """``reported`` figures win over the gateway's: a wrapper that sends only its output's
    tail knows the whole output's size, and its own clock times the run exactly."""
    attributes: dict[str, Any] = {
        "monitor": monitor_slug,
        "monitor_id": monitor_id,
        "status": status,
    }
    if exit_code is not None:
        attributes["exit_code"] = exit_code
    if run_id is not None:
        attributes["run_id"] = run_id
    attributes |= {
        # A multi-byte character cut at the limit becomes one U+FFFD.
        "output": body.head.decode("utf-8", errors="replace"),
        "output_size": body.size,
        **(reported.attributes() if reported else {}),
        "source": "ping",
        "method": method,
        "user_agent": user_agent,
    }
    return {"kind": "check_in", "distinct_id": None, "attributes": attributes}
