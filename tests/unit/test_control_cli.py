"""``pulseline projects|keys|monitors|channels|rules``: parsing, running, printing; no Kafka."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any

import pytest

from pulseline.cli import build_parser, main
from pulseline.commands.control import UsageError, assignment, execute, merge_changes, slugify
from pulseline.commands.control_output import Result, render
from pulseline.control.entities import SECRET_MASK as MASK
from pulseline.control.entities import Channel, EntityType, Monitor
from pulseline.control.errors import Conflict, Invalid, NotFound
from pulseline.control.service import ControlService
from pulseline.keys import Scope
from tests.unit.test_admin_api import MemoryStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def service() -> ControlService:
    return ControlService(MemoryStore())


async def cli(service: ControlService, *argv: str) -> Result:
    return await execute(service, build_parser().parse_args(argv))


async def shop(service: ControlService) -> None:
    await cli(service, "projects", "create", "--name", "Shop", "--slug", "shop")


NIGHTLY = shlex.split(
    'monitors create --project shop --name "Nightly backup" --cron "0 2 * * *"'
    " --tz Europe/Berlin --grace 600 --max-runtime 3600 --tag db"
)


# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grace_s=900", ("grace_s", 900)),
        ("paused=true", ("paused", True)),
        ("name=Nightly backup", ("name", "Nightly backup")),
        ('tags=["db","eu"]', ("tags", ["db", "eu"])),
        ("max_runtime_s=null", ("max_runtime_s", None)),
        ("schedule.cron=0 3 * * *", ("schedule.cron", "0 3 * * *")),
        ("url=https://example.com/a=b", ("url", "https://example.com/a=b")),
        ("name=", ("name", "")),
    ],
)
def test_a_set_value_is_json_when_it_parses(text: str, expected: tuple[str, Any]) -> None:
    assert assignment(text) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["monitors", "update", "x", "--project", "shop", "--set", "grace_s"],
        ["monitors", "update", "x", "--project", "shop"],
        ["monitors", "create", "--project", "shop", "--name", "n"],
        [
            "monitors",
            "create",
            "--project",
            "s",
            "--name",
            "n",
            "--cron",
            "* * * * *",
            "--period",
            "60",
        ],
        ["monitors", "list"],
        ["projects", "pause", "shop"],
        ["keys", "create", "--name", "k", "--scope", "root"],
        ["channels", "create", "--project", "s", "--name", "c", "--type", "fax"],
    ],
)
def test_a_usage_error_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err


def test_the_monitor_example_parses() -> None:
    args = build_parser().parse_args([*NIGHTLY, "--json"])
    assert (args.entity_type, args.action, args.project) == (EntityType.MONITOR, "create", "shop")
    assert (args.cron, args.tz, args.grace, args.max_runtime, args.tag, args.json) == (
        "0 2 * * *",
        "Europe/Berlin",
        600,
        3600,
        ["db"],
        True,
    )


def test_slugs_are_made_from_names() -> None:
    assert slugify("Nightly Backup (EU) #2") == "nightly-backup-eu-2"


def test_a_nested_set_changes_one_key_and_keeps_its_siblings() -> None:
    current = {"schedule": {"cron": "0 2 * * *", "tz": "Europe/Berlin", "period_s": None}}
    changes = merge_changes(current, [("schedule.cron", "0 3 * * *"), ("grace_s", 60)])
    assert changes == {
        "schedule": {"cron": "0 3 * * *", "tz": "Europe/Berlin", "period_s": None},
        "grace_s": 60,
    }
    assert current["schedule"]["cron"] == "0 2 * * *"
    with pytest.raises(UsageError, match="name is not an object"):
        merge_changes({"name": "x"}, [("name.first", "y")])


# Running against the control service (in-memory store)


async def test_it_creates_gets_updates_pauses_and_deletes_a_monitor(
    service: ControlService,
) -> None:
    await shop(service)
    created = await cli(service, *NIGHTLY)
    monitor = created.entities[0]
    assert isinstance(monitor, Monitor)
    assert (monitor.slug, monitor.schedule.cron, monitor.schedule.tz) == (
        "nightly-backup",
        "0 2 * * *",
        "Europe/Berlin",
    )
    assert (monitor.grace_s, monitor.max_runtime_s, monitor.tags) == (600, 3600, ["db"])

    args = ("--project", "shop")
    listed = await cli(service, "monitors", "list", *args)
    assert listed.many and [m.id for m in listed.entities] == [monitor.id]
    assert (await cli(service, "monitors", "get", monitor.id, *args)).entities == [monitor]

    updated = await cli(
        service,
        "monitors",
        "update",
        "nightly-backup",
        *args,
        "--set",
        "schedule.cron=30 3 * * *",
        "--set",
        "grace_s=900",
    )
    changed = updated.entities[0]
    assert isinstance(changed, Monitor)
    assert (changed.schedule.cron, changed.schedule.tz, changed.grace_s) == (
        "30 3 * * *",
        "Europe/Berlin",
        900,
    )

    paused = (await cli(service, "monitors", "pause", "nightly-backup", *args)).entities[0]
    assert isinstance(paused, Monitor) and paused.paused
    resumed = (await cli(service, "monitors", "resume", "nightly-backup", *args)).entities[0]
    assert isinstance(resumed, Monitor) and not resumed.paused

    deleted = await cli(service, "monitors", "delete", "nightly-backup", *args)
    assert deleted.deleted == monitor.id
    assert service.view.monitors() == []


async def test_a_period_monitor_takes_default_grace(service: ControlService) -> None:
    await shop(service)
    monitor = (
        await cli(
            service,
            "monitors",
            "create",
            "--project",
            "shop",
            "--name",
            "Heartbeat",
            "--period",
            "3600",
        )
    ).entities[0]
    assert isinstance(monitor, Monitor)
    assert (monitor.schedule.period_s, monitor.grace_s, monitor.slug) == (3600, 300, "heartbeat")


async def test_thresholds_are_set_per_project_and_monitor_and_checked(
    service: ControlService,
) -> None:
    created = await cli(service, "projects", "create", "--name", "Shop", "--threshold", "z_score=4")
    assert created.entities[0].thresholds == {"z_score": 4.0}  # type: ignore[union-attr]
    argv = ["monitors", "create", "--project", "shop", "--name", "Backup", "--period", "60"]
    monitor = (await cli(service, *argv, "--threshold", "size_drop=0.5")).entities[0]
    assert isinstance(monitor, Monitor) and monitor.thresholds == {"size_drop": 0.5}
    with pytest.raises(Invalid, match="unknown threshold 'z_scor'"):
        await cli(service, *argv[:-3], "Other", "--period", "60", "--threshold", "z_scor=4")


async def test_control_errors_reach_the_caller(service: ControlService) -> None:
    await shop(service)
    with pytest.raises(NotFound):
        await cli(service, "monitors", "list", "--project", "nope")
    with pytest.raises(Conflict):
        await shop(service)
    with pytest.raises(Invalid, match=r"schedule\.cron"):
        await cli(
            service, "monitors", "create", "--project", "shop", "--name", "m", "--cron", "at night"
        )
    with pytest.raises(UsageError, match="--project"):
        await cli(service, "keys", "create", "--scope", "ingest", "--name", "browser")


async def test_a_key_is_shown_once(service: ControlService) -> None:
    await shop(service)
    created = await cli(
        service, "keys", "create", "--project", "shop", "--scope", "ingest", "--name", "browser"
    )
    assert created.raw_key is not None and created.raw_key.startswith("pl_ingest_")
    assert service.view.lookup(created.raw_key) is not None
    shown = render(created, as_json=True)
    assert json.loads(shown)["key"] == created.raw_key and "hash" not in json.loads(shown)

    listed = await cli(service, "keys", "list", "--project", "shop")
    for as_json in (True, False):
        text = render(listed, as_json)
        assert created.raw_key not in text and "hash" not in text
    revoked = await cli(service, "keys", "revoke", str(created.entities[0].id), "--project", "shop")
    assert service.view.lookup(created.raw_key) is None
    assert "revoked_at" in render(revoked, as_json=True)


async def test_an_admin_key_without_a_project_spans_projects(service: ControlService) -> None:
    created = await cli(service, "keys", "create", "--scope", "admin", "--name", "ops")
    assert created.raw_key is not None
    grant = service.view.lookup(created.raw_key)
    assert grant is not None and (grant.project_id, grant.scope) == (None, Scope.ADMIN)
    assert "*" in render(await cli(service, "keys", "list"), as_json=False)


async def test_a_rule_names_its_channels_and_monitors_by_slug(service: ControlService) -> None:
    await shop(service)
    await cli(service, *NIGHTLY)
    channel = (
        await cli(
            service,
            "channels",
            "create",
            "--project",
            "shop",
            "--name",
            "Ops",
            "--type",
            "webhook",
            "--config",
            "url=https://example.com/hook",
            "--secret",
            "whsec_s3cr3t",
        )
    ).entities[0]
    assert isinstance(channel, Channel) and channel.config == {"url": "https://example.com/hook"}
    rule = (
        await cli(
            service,
            "rules",
            "create",
            "--project",
            "shop",
            "--name",
            "Page",
            "--channel",
            "ops",
            "--monitor",
            "nightly-backup",
            "--kind",
            "monitor.missed",
        )
    ).entities[0]
    monitor = service.view.by_slug(EntityType.MONITOR, "nightly-backup")
    assert monitor is not None
    assert rule.model_dump()["channels"] == [channel.id]
    assert rule.model_dump()["monitors"] == [monitor.id]
    assert rule.model_dump()["kinds"] == ["monitor.missed"]


# Printing


async def test_channel_secrets_never_print(service: ControlService) -> None:
    await shop(service)
    created = await cli(
        service,
        "channels",
        "create",
        "--project",
        "shop",
        "--name",
        "Ops",
        "--type",
        "slack",
        "--secret",
        "xoxb-s3cr3t",
    )
    listed = await cli(service, "channels", "list", "--project", "shop")
    for result in (created, listed):
        for as_json in (True, False):
            assert "xoxb-s3cr3t" not in render(result, as_json)
    assert json.loads(render(created, as_json=True))["secret"] == MASK


async def test_a_listing_prints_a_table_with_a_header_and_one_line_each(
    service: ControlService,
) -> None:
    await shop(service)
    await cli(service, *NIGHTLY)
    await cli(
        service,
        "monitors",
        "create",
        "--project",
        "shop",
        "--name",
        "Heartbeat",
        "--period",
        "3600",
        "--paused",
    )
    lines = render(await cli(service, "monitors", "list", "--project", "shop"), False).splitlines()
    assert lines[0].split() == ["ID", "SLUG", "NAME", "SCHEDULE", "GRACE", "STATE", "TAGS"]
    assert "heartbeat" in lines[1] and "every 3600s" in lines[1] and "paused" in lines[1]
    assert "nightly-backup" in lines[2] and "cron 0 2 * * * Europe/Berlin" in lines[2]
    assert "600s" in lines[2] and "active" in lines[2] and lines[2].endswith("db")

    projects = render(await cli(service, "projects", "list"), False).splitlines()
    assert projects[1].split() == ["1", "shop", "Shop", "free", "7d", "50", "1000000"]


async def test_json_output_is_the_entity(service: ControlService) -> None:
    await shop(service)
    created = await cli(service, *NIGHTLY)
    one = json.loads(render(created, as_json=True))
    assert one["slug"] == "nightly-backup" and one["schedule"]["tz"] == "Europe/Berlin"
    many = json.loads(render(await cli(service, "monitors", "list", "--project", "1"), True))
    assert many == [one]
    gone = await cli(service, "monitors", "delete", "nightly-backup", "--project", "shop")
    assert json.loads(render(gone, as_json=True)) == {"deleted": "monitor", "id": one["id"]}
    assert render(gone, as_json=False) == f"deleted monitor {one['id']}"


async def test_one_entity_prints_as_field_and_value(service: ControlService) -> None:
    await shop(service)
    text = render(await cli(service, *NIGHTLY), as_json=False)
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in text.splitlines()[1:]}
    assert rows["schedule"] == '{"period_s": null, "cron": "0 2 * * *", "tz": "Europe/Berlin"}'
    assert rows["max_runtime_s"] == "3600" and rows["paused"] == "false"


# The shell: a broker that is not there is a clear error and exit 1


def test_an_unreachable_broker_is_a_clear_error_without_a_traceback() -> None:
    env = {**os.environ, "PULSELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    done = subprocess.run(
        [sys.executable, "-m", "pulseline.cli", "projects", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith("pulseline: could not read control.entities from 127.0.0.1:1")
    assert "Traceback" not in done.stderr and "Unable connect" not in done.stderr


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["scope", "revoked_at", "hash", "project_id"])
async def test_a_keys_grant_cannot_be_changed_by_update(
    service: ControlService, field: str
) -> None:
    from pulseline.control.entities import EntityType
    from pulseline.control.errors import Invalid
    from pulseline.keys import Scope

    project = await service.create(EntityType.PROJECT, {"name": "P", "slug": "p"})
    record, _ = await service.create_key(project.id, Scope.INGEST, "browser")
    with pytest.raises(Invalid, match=field):
        await service.update(EntityType.API_KEY, record.id, {field: "admin"})
