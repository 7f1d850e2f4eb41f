import pytest

from stream_processors.logic.replay_guard import fresh, source_id


@pytest.mark.parametrize(
    ("marks", "source", "offsets", "kept", "after"),
    [
        ({}, "t:0", [3, 4, 9], [0, 1, 2], {"t:0": 9}),
        ({"t:0": 4}, "t:0", [3, 4, 9], [2], {"t:0": 9}),
        ({"t:0": 9}, "t:0", [3, 4, 9], [], {"t:0": 9}),
        ({"t:0": 9}, "t:1", [3], [0], {"t:0": 9, "t:1": 3}),
        ({"t:1": 2}, "t:1", [], [], {"t:1": 2}),
        ({}, "t:0", [300, 301, 301, 302], [0, 1, 3], {"t:0": 302}),
        ({"t:0": 1}, "t:0", [5, 3, 6], [0, 2], {"t:0": 6}),
    ],
    ids=[
        "first",
        "replay-overlapping",
        "replay-whole",
        "other-source",
        "empty",
        "handed-twice-in-one-batch",
        "out-of-order-in-one-batch",
    ],
)
def test_fresh_keeps_only_offsets_above_the_mark_of_their_source(
    marks: dict[str, int], source: str, offsets: list[int], kept: list[int], after: dict[str, int]
) -> None:
    assert fresh(marks, source, offsets) == (kept, after)


def test_a_batch_replayed_with_other_cuts_is_applied_exactly_once() -> None:
    offsets = list(range(10, 30))
    marks: dict[str, int] = {}
    applied: list[int] = []
    for cut in ([10, 11, 12, 13, 14, 15, 16], list(range(10, 22)), list(range(20, 30))):
        keep, marks = fresh(marks, "ingest.metric:2", cut)
        applied += [cut[i] for i in keep]
    assert applied == offsets


def test_marks_are_not_mutated() -> None:
    marks = {"a:0": 1}
    fresh(marks, "a:0", [5])
    assert marks == {"a:0": 1}
    assert source_id("ingest.error", 3) == "ingest.error:3"
