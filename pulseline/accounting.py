"""Account for every event of a run: what was sent and acknowledged against what is stored.

Per tenant, given the event ids a client sent, the ids the gateway acknowledged (202)
and how many stored copies of each id were found:

- ``lost``: acknowledged but not stored: the pipeline broke its promise;
- ``duplicates``: stored copies beyond the first, summed over ids;
- ``phantoms``: stored ids this tenant never sent (another tenant's, or invented);
- ``indeterminate``: sent but not acknowledged (error or timeout): the client cannot
  know, so they are neither lost nor phantoms; ``unacked_stored`` says how many landed.

Pure: the caller fetches ``stored`` (``stored_counts_sql`` builds the FINAL-free count
of physical rows; the bench pages the read API for the visible view).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence, Set
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class TenantReport:
    sent: int
    acked: int
    stored: int
    lost: int
    duplicates: int
    phantoms: int
    indeterminate: int
    unacked_stored: int

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.phantoms == 0

    def as_json(self) -> dict[str, int]:
        return asdict(self)


def account(
    sent: Mapping[T, Set[str]],
    acked: Mapping[T, Set[str]],
    stored: Mapping[T, Mapping[str, int]],
) -> dict[T, TenantReport]:
    """One report per tenant named in any of the three maps; an id acked is also sent."""
    reports: dict[T, TenantReport] = {}
    for tenant in {*sent, *acked, *stored}:
        tenant_acked = acked.get(tenant, frozenset())
        tenant_sent = sent.get(tenant, frozenset()) | tenant_acked
        copies = stored.get(tenant, {})
        present = {event_id for event_id, n in copies.items() if n > 0}
        unacked = tenant_sent - tenant_acked
        reports[tenant] = TenantReport(
            sent=len(tenant_sent),
            acked=len(tenant_acked),
            stored=len(present),
            lost=len(tenant_acked - present),
            duplicates=sum(n - 1 for n in copies.values() if n > 1),
            phantoms=len(present - tenant_sent),
            indeterminate=len(unacked),
            unacked_stored=len(unacked & present),
        )
    return reports


def stored_counts_sql(
    db: str, project_ids: Iterable[int], environment: str
) -> tuple[str, dict[str, Any]]:
    """Physical rows per (project, event id) of a run, without FINAL: a copy not yet
    merged away counts, which is the point (the read API hides it; storage holds it)."""
    return (
        f"SELECT project_id, toString(event_id) AS event_id, count() AS copies "
        f"FROM {db}.events WHERE project_id IN {{projects:Array(UInt32)}} "
        "AND environment = {environment:String} GROUP BY project_id, event_id",
        {"projects": sorted(project_ids), "environment": environment},
    )


def fold_counts(rows: Iterable[Sequence[Any]]) -> dict[int, Counter[str]]:
    """``(project_id, event_id, copies)`` rows as the ``stored`` map of ``account``."""
    out: dict[int, Counter[str]] = {}
    for project_id, event_id, copies in rows:
        out.setdefault(int(project_id), Counter())[str(event_id)] += int(copies)
    return out
