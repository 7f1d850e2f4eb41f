"""``pulseline projects|keys|monitors|channels|rules``: the control plane from a terminal.

The CLI talks to Kafka directly (``ControlStore`` + ``ControlService``), not to the admin
API, so it works with only a broker running; a command returns once its write is visible.
Output is a table, or JSON with ``--json``. Channel secrets are masked and key hashes never
shown; a new key's raw value is printed once, at creation.

Exit codes: 0 done; 1 a control-plane error (not found, conflict, invalid value, Kafka
unreachable), one line on stderr; 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import re
import sys
from typing import Any

from aiokafka.errors import KafkaError

from pulseline.commands.control_output import Result, render
from pulseline.commands.types import SubParsers
from pulseline.control.entities import EntityType
from pulseline.control.errors import ControlError
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore, ControlStoreError
from pulseline.keys import Scope
from pulseline.settings import CommonSettings

START_TIMEOUT_S = 15.0
NOUNS = {
    "projects": EntityType.PROJECT,
    "keys": EntityType.API_KEY,
    "monitors": EntityType.MONITOR,
    "channels": EntityType.CHANNEL,
    "rules": EntityType.RULE,
}
EXTRA_ACTIONS = {EntityType.MONITOR: ("pause", "resume"), EntityType.API_KEY: ("revoke",)}


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit 2)."""


# Parsing


def assignment(text: str) -> tuple[str, Any]:
    """``field=value`` (``a.b=value`` for a nested field); the value is JSON if it parses."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected field=value, got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]


def register(sub: SubParsers) -> None:
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for noun, kind in NOUNS.items():
        parser = sub.add_parser(noun, help=f"manage {noun} (talks to Kafka directly)")
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for action in ("create", "list", "get", "update", "delete", *EXTRA_ACTIONS.get(kind, ())):
            one = actions.add_parser(action, parents=[as_json], help=f"{action} {noun}")
            one.set_defaults(handler=run, entity_type=kind)
            if kind is not EntityType.PROJECT:
                keys = kind is EntityType.API_KEY
                hint = "; omit for an admin key that spans projects" if keys else ""
                one.add_argument("--project", required=not keys, help=f"id or slug{hint}")
            if action == "create":
                _create_arguments(one, kind)
            elif action != "list":
                one.add_argument("ref", help="id" if kind is EntityType.API_KEY else "id or slug")
            if action == "update":
                one.add_argument(
                    "--set",
                    dest="changes",
                    type=assignment,
                    action="append",
                    required=True,
                    metavar="FIELD=VALUE",
                    help="repeatable; the value is parsed as JSON when it can be",
                )


def _threshold_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold",
        type=assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="anomaly-rule override, repeatable, e.g. z_score=4 (see docs/PROCESSORS.md)",
    )


def _create_arguments(parser: argparse.ArgumentParser, kind: EntityType) -> None:
    if kind is EntityType.API_KEY:
        parser.add_argument("--scope", required=True, choices=[s.value for s in Scope])
        parser.add_argument("--name", required=True, help="what the key is for")
        return
    parser.add_argument("--name", required=True)
    parser.add_argument("--slug", help="default: made from the name")
    if kind is EntityType.PROJECT:
        parser.add_argument("--tier", choices=["free", "starter", "pro", "enterprise"])
        parser.add_argument("--retention-days", type=int)
        parser.add_argument("--events-per-second", type=int)
        parser.add_argument("--monthly-quota", type=int)
        _threshold_argument(parser)
    elif kind is EntityType.MONITOR:
        schedule = parser.add_mutually_exclusive_group(required=True)
        schedule.add_argument("--cron", help='e.g. "0 2 * * *"')
        schedule.add_argument("--period", type=int, help="expected every N seconds")
        parser.add_argument("--tz", help="IANA time zone of --cron (default UTC)")
        parser.add_argument("--grace", type=int, help="seconds of lateness tolerated")
        parser.add_argument("--max-runtime", type=int, help="seconds a run may take")
        parser.add_argument("--tag", action="append", default=[])
        parser.add_argument("--paused", action="store_true")
        _threshold_argument(parser)
    elif kind is EntityType.CHANNEL:
        parser.add_argument(
            "--type",
            required=True,
            choices=["webhook", "slack", "discord", "teams", "email", "pagerduty"],
        )
        parser.add_argument(
            "--config",
            type=assignment,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="repeatable, e.g. url=https://…",
        )
        parser.add_argument("--secret", help="signing secret or token; shown masked")
        parser.add_argument("--disabled", action="store_true")
    elif kind is EntityType.RULE:
        parser.add_argument(
            "--channel",
            action="append",
            required=True,
            metavar="REF",
            help="channel id or slug; repeatable",
        )
        parser.add_argument(
            "--monitor",
            action="append",
            default=[],
            metavar="REF",
            help="only these monitors (id or slug); repeatable",
        )
        parser.add_argument("--kind", dest="kinds", action="append", default=[], help="event kinds")
        parser.add_argument("--severity", action="append", default=[])
        parser.add_argument("--tag", action="append", default=[])
        parser.add_argument("--muted-until", help="ISO 8601 time")


# Executing


def run(args: argparse.Namespace) -> int:
    settings = CommonSettings.from_env()
    if settings.log_level != "DEBUG":  # our one-line message says it; spare the traceback
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        result = asyncio.run(_session(settings, args))
    except UsageError as exc:
        print(f"pulseline: {exc}", file=sys.stderr)
        return 2
    except (ControlError, ControlStoreError) as exc:
        print(f"pulseline: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"pulseline: cannot reach Kafka at {settings.bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(render(result, args.json))
    if result.raw_key is not None:
        print("pulseline: store this key now; it will not be shown again", file=sys.stderr)
    return 0


async def _session(settings: CommonSettings, args: argparse.Namespace) -> Result:
    store = ControlStore(settings)
    try:
        await store.start(timeout_s=START_TIMEOUT_S)
        return await execute(ControlService(store), args)
    finally:
        await store.stop()


async def execute(service: ControlService, args: argparse.Namespace) -> Result:
    """Carry out one parsed command against ``service``; Kafka-free given a twin store."""
    kind: EntityType = args.entity_type
    project_id = _project_id(service, getattr(args, "project", None))
    if args.action == "list":
        return Result(kind, service.view.all(kind, project_id), many=True)
    if args.action == "create":
        if kind is EntityType.API_KEY:
            if project_id is None and args.scope != Scope.ADMIN:
                raise UsageError("keys create: give --project (only admin keys span projects)")
            record, raw = await service.create_key(project_id, Scope(args.scope), args.name)
            return Result(kind, [record], raw_key=raw)
        return Result(kind, [await service.create(kind, _fields(service, args, project_id))])
    entity = service.find(kind, args.ref, project_id)
    if args.action == "get":
        return Result(kind, [entity])
    if args.action == "delete":
        await service.delete(kind, entity.id, project_id)
        return Result(kind, deleted=str(entity.id))
    if args.action == "revoke":
        return Result(kind, [await service.revoke_key(str(entity.id), project_id)])
    if args.action in ("pause", "resume"):
        changes: dict[str, Any] = {"paused": args.action == "pause"}
    else:
        changes = merge_changes(entity.model_dump(mode="json"), args.changes)
    return Result(kind, [await service.update(kind, entity.id, changes, project_id)])


def _project_id(service: ControlService, ref: str | None) -> int | None:
    return None if ref is None else int(service.find(EntityType.PROJECT, ref).id)


def merge_changes(current: dict[str, Any], sets: list[tuple[str, Any]]) -> dict[str, Any]:
    """Top-level changes for ``--set`` pairs; ``a.b=v`` changes one key inside ``a``."""
    changes: dict[str, Any] = {}
    for path, value in sets:
        top, *inner = path.split(".")
        if not inner:
            changes[top] = value
            continue
        node = changes.setdefault(top, copy.deepcopy(current.get(top)) or {})
        for part in inner[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise UsageError(f"--set {path}: {top} is not an object")
        node[inner[-1]] = value
    return changes


def _fields(service: ControlService, args: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    """The new entity's fields from the create arguments (unset options keep defaults)."""
    data: dict[str, Any] = {"name": args.name, "slug": args.slug or slugify(args.name)}
    if pid is not None:
        data["project_id"] = pid
    options: dict[str, Any] = {}
    if args.entity_type is EntityType.PROJECT:
        options = {
            "tier": args.tier,
            "retention_days": args.retention_days,
            "events_per_second": args.events_per_second,
            "monthly_quota": args.monthly_quota,
            "thresholds": dict(args.threshold),
        }
    elif args.entity_type is EntityType.MONITOR:
        schedule = {"cron": args.cron, "tz": args.tz} if args.cron else {"period_s": args.period}
        options = {
            "schedule": {k: v for k, v in schedule.items() if v is not None},
            "grace_s": args.grace,
            "max_runtime_s": args.max_runtime,
            "tags": args.tag,
            "paused": args.paused,
            "thresholds": dict(args.threshold),
        }
    elif args.entity_type is EntityType.CHANNEL:
        options = {
            "type": args.type,
            "config": dict(args.config),
            "secret": args.secret,
            "disabled": args.disabled,
        }
    elif args.entity_type is EntityType.RULE:

        def ids(kind: EntityType, refs: list[str]) -> list[str]:
            return [str(service.find(kind, ref, pid).id) for ref in refs]

        options = {
            "channels": ids(EntityType.CHANNEL, args.channel),
            "monitors": ids(EntityType.MONITOR, args.monitor),
            "kinds": args.kinds,
            "severities": args.severity,
            "tags": args.tag,
            "muted_until": args.muted_until,
        }
    return {**data, **{k: v for k, v in options.items() if v is not None}}
