import pytest

from pulseline.restart import CrashHistory, RestartPolicy

POLICY = RestartPolicy(first_delay_s=1, max_delay_s=4, max_crashes=5, window_s=60)


@pytest.mark.parametrize(
    ("crash_times", "expected"),
    [
        ([0], 1.0),
        ([0, 1], 2.0),
        ([0, 1, 3], 4.0),
        ([0, 1, 3, 7], 4.0),  # capped
        ([0, 1, 3, 7, 11], None),  # fifth crash within the window: give up
        ([0, 100], 1.0),  # an old crash has left the window
        ([0, 10, 20, 30, 61, 65], None),  # five within the last 60 s
        ([0, 10, 20, 30, 61, 70], 4.0),  # the crash at 10 has just left the window
    ],
)
def test_it_backs_off_then_gives_up(crash_times: list[float], expected: float | None) -> None:
    history = CrashHistory(POLICY)
    result: float | None = None
    for t in crash_times:
        result = history.record(t)
    assert result == expected
