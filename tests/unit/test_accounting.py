"""The run accounting: lost, duplicated, phantom and indeterminate events per tenant."""

from __future__ import annotations

from collections import Counter

import pytest

from pulseline.accounting import TenantReport, account, fold_counts, stored_counts_sql


def report(**figures: int) -> TenantReport:
    base = dict.fromkeys(
        (
            "sent",
            "acked",
            "stored",
            "lost",
            "duplicates",
            "phantoms",
            "indeterminate",
            "unacked_stored",
        ),
        0,
    )
    return TenantReport(**{**base, **figures})


@pytest.mark.parametrize(
    ("sent", "acked", "stored", "expected"),
    [
        ({"a", "b"}, {"a", "b"}, {"a": 1, "b": 1}, report(sent=2, acked=2, stored=2)),
        ({"a", "b"}, {"a", "b"}, {"a": 1}, report(sent=2, acked=2, stored=1, lost=1)),
        ({"a"}, {"a"}, {"a": 3}, report(sent=1, acked=1, stored=1, duplicates=2)),
        ({"a"}, {"a"}, {"a": 1, "z": 1}, report(sent=1, acked=1, stored=2, phantoms=1)),
        (
            {"a", "b", "c"},
            {"a"},
            {"a": 1, "b": 1},
            report(sent=3, acked=1, stored=2, indeterminate=2, unacked_stored=1),
        ),
        ({"a"}, {"a"}, {"a": 0}, report(sent=1, acked=1, lost=1)),
        (set(), {"a"}, {"a": 1}, report(sent=1, acked=1, stored=1)),
        (set(), set(), {}, report()),
    ],
)
def test_each_tenant_is_accounted_for(
    sent: set[str], acked: set[str], stored: dict[str, int], expected: TenantReport
) -> None:
    assert account({1: sent}, {1: acked}, {1: Counter(stored)}) == {1: expected}


def test_an_event_stored_under_the_wrong_tenant_is_lost_for_one_and_phantom_for_the_other() -> None:
    sent = {1: {"a"}, 2: {"b"}}

    out = account(sent, sent, {1: Counter(), 2: Counter({"a": 1, "b": 1})})

    assert out[1].lost == 1 and not out[1].clean
    assert out[2].phantoms == 1 and out[2].lost == 0


def test_a_tenant_that_only_appears_in_storage_is_all_phantoms() -> None:
    out = account({1: {"a"}}, {1: {"a"}}, {1: Counter({"a": 1}), 9: Counter({"x": 2})})

    assert out[1].clean
    assert out[9] == report(stored=1, phantoms=1, duplicates=1)


def test_the_physical_count_query_reads_without_final_and_binds_the_run() -> None:
    sql, params = stored_counts_sql("db1", [3, 1], "bench-r1")

    assert "FINAL" not in sql and "FROM db1.events" in sql
    assert params == {"projects": [1, 3], "environment": "bench-r1"}


def test_rows_fold_into_counters_per_project() -> None:
    rows = [(1, "a", 2), (1, "b", 1), (2, "a", 1), (1, "a", 1)]

    assert fold_counts(rows) == {1: Counter({"a": 3, "b": 1}), 2: Counter({"a": 1})}
