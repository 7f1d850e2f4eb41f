"""What every read endpoint shares: the caller's project key, API errors, time ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pulseline.keys import Scope

MAX_RANGE = timedelta(days=400)


@dataclass(frozen=True)
class ProjectKey:
    """A key that reads one project's data."""

    project_id: int
    scope: Scope


class ApiError(Exception):
    """An answer other than 200; ``storage.api`` turns it into ``{"error", "detail"}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2105, 12, 31, tzinfo=UTC)


def time_range(
    since: datetime | None, until: datetime | None, default: timedelta
) -> tuple[datetime, datetime]:
    """``[since, until)``, defaulting to ``default`` back from now; 400 on a bad range."""
    end = until or datetime.now(UTC) + timedelta(minutes=5)
    start = since or end - default
    for name, value in (("since", start), ("until", end)):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        if not EARLIEST <= moment <= LATEST:
            raise ApiError(
                400, "invalid_time", f"'{name}' must be between 1970 and 2105 (ClickHouse DateTime)"
            )
    if start >= end:
        raise ApiError(400, "invalid_range", "'since' must be before 'until'")
    if end - start > MAX_RANGE:
        raise ApiError(400, "range_too_long", f"the time range is limited to {MAX_RANGE.days} days")
    return start, end
