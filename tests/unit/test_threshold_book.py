import pydantic
import pytest

from pulseline.control.entities import Monitor, Project, Schedule
from pulseline.control.view import ControlView
from stream_processors.logic.series import DURATION, OUTPUT_SIZE, SeriesKey
from stream_processors.logic.thresholds import Thresholds
from stream_processors.threshold_book import ThresholdBook
from tests.unit.test_control_view import put


def project(**thresholds: float) -> Project:
    return Project(id=1, name="Shop", slug="shop", ping_key="p" * 20, thresholds=thresholds)


def monitor(**thresholds: float) -> Monitor:
    return Monitor(
        id="m1",
        project_id=1,
        name="Backup",
        slug="backup",
        schedule=Schedule(period_s=3600),
        thresholds=thresholds,
    )


@pytest.mark.parametrize(
    ("key", "z_score", "size_drop"),
    [
        (SeriesKey(1, DURATION, "backup"), 5.0, 0.5),
        (SeriesKey(1, OUTPUT_SIZE, "backup"), 5.0, 0.5),
        (SeriesKey(1, DURATION, "other-job"), 4.0, 0.7),
        (SeriesKey(1, "metric", "backup"), 4.0, 0.7),
        (SeriesKey(2, DURATION, "backup"), 3.0, 0.7),
    ],
    ids=["monitor-duration", "monitor-size", "other-monitor", "not-a-monitor", "other-project"],
)
def test_defaults_then_project_then_monitor(
    key: SeriesKey, z_score: float, size_drop: float
) -> None:
    view = ControlView()
    put(view, project(z_score=4.0), 0)
    put(view, monitor(z_score=5.0, size_drop=0.5), 1)
    found = ThresholdBook(lambda: view).for_series(key)
    assert (found.z_score, found.size_drop) == (z_score, size_drop)
    assert found.min_samples == Thresholds().min_samples


def test_a_change_in_the_control_plane_applies_to_the_next_lookup() -> None:
    view = ControlView()
    put(view, monitor(min_samples=20), 0)
    book = ThresholdBook(lambda: view)
    key = SeriesKey(1, DURATION, "backup")
    assert book.for_series(key).min_samples == 20
    put(view, monitor(min_samples=30), 1)
    assert book.for_series(key).min_samples == 30


def test_a_bad_override_is_refused_when_written_naming_the_limit() -> None:
    with pytest.raises(pydantic.ValidationError, match="unknown threshold 'z_scor'"):
        project(z_scor=4.0)
    with pytest.raises(pydantic.ValidationError, match="'size_drop' must be below 1"):
        monitor(size_drop=1.5)
