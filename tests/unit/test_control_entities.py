import pytest
from pydantic import ValidationError

from pulseline.control.entities import ApiKeyRecord, Project, Schedule, Tier
from pulseline.keys import Scope


@pytest.mark.parametrize(
    ("tier", "retention"),
    [(Tier.FREE, 7), (Tier.STARTER, 30), (Tier.PRO, 90), (Tier.ENTERPRISE, 365)],
)
def test_tiers_set_retention(tier: Tier, retention: int) -> None:
    project = Project(id=1, name="x", slug="x", tier=tier, ping_key="p" * 20)
    assert project.limits().retention_days == retention


def test_a_project_override_wins_over_its_tier() -> None:
    project = Project(
        id=1, name="x", slug="x", tier=Tier.FREE, retention_days=14, ping_key="p" * 20
    )
    assert project.limits().retention_days == 14


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ({}, "exactly one"),
        ({"period_s": 60, "cron": "* * * * *"}, "exactly one"),
        ({"cron": "every day"}, "not a cron"),
        ({"cron": "0 2 * * *", "tz": "Mars/Olympus"}, "IANA"),
        ({"period_s": 5}, "greater than or equal"),
    ],
)
def test_bad_schedules_say_what_is_wrong(schedule: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Schedule.model_validate(schedule)


def test_only_admin_keys_may_span_projects() -> None:
    fields = {
        "id": "k",
        "name": "k",
        "prefix": "pl_read_abcd",
        "hash": "0" * 64,
        "created_at": "2026-01-01T00:00:00Z",
    }
    with pytest.raises(ValidationError, match="only admin keys"):
        ApiKeyRecord.model_validate({**fields, "project_id": None, "scope": Scope.READ})
    assert ApiKeyRecord.model_validate({**fields, "project_id": None, "scope": Scope.ADMIN})


@pytest.mark.parametrize("slug", ["Shop", "-shop", "shop_1", "", "a" * 64])
def test_slugs_are_lowercase_words(slug: str) -> None:
    with pytest.raises(ValidationError):
        Project(id=1, name="x", slug=slug, ping_key="p" * 20)
