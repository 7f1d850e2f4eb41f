"""``pulseline config``, ``pulseline topics create|list`` and ``pulseline migrate``."""

from __future__ import annotations

import argparse
import asyncio
import json

from pulseline.commands.types import SubParsers
from pulseline.settings import (
    GatewaySettings,
    LocalKafkaSettings,
    ProcessorSettings,
    StorageSettings,
)
from pulseline.table import print_table
from pulseline.topic_admin import create_topics
from pulseline.topics import REGISTRY


def register(sub: SubParsers) -> None:
    config = sub.add_parser("config", help="print the effective configuration, secrets masked")
    config.add_argument("--json", action="store_true")
    config.set_defaults(handler=show_config)

    topics = sub.add_parser("topics", help="the topic registry")
    topics.add_argument("action", choices=["create", "list"])
    topics.set_defaults(handler=run_topics)

    migrate = sub.add_parser("migrate", help="apply ClickHouse migrations")
    migrate.add_argument("--status", action="store_true", help="show what is applied")
    migrate.set_defaults(handler=run_migrate)


def show_config(args: argparse.Namespace) -> int:
    merged: dict[str, object] = {}
    for cls in (LocalKafkaSettings, GatewaySettings, ProcessorSettings, StorageSettings):
        merged.update(cls.from_env().redacted())
    if args.json:
        print(json.dumps(merged, indent=2, default=str))
    else:
        print_table(["variable", "value"], [[k, str(v)] for k, v in sorted(merged.items())])
    return 0


def run_topics(args: argparse.Namespace) -> int:
    settings = LocalKafkaSettings.from_env()
    if args.action == "list":
        print_table(
            ["topic", "role", "partition key", "schema", "retention"],
            [
                [
                    s.physical(settings.topic_prefix),
                    s.role.value,
                    s.key,
                    s.schema.__name__,
                    "compact" if s.compacted else f"{(s.retention_ms or 0) // 86_400_000}d",
                ]
                for s in REGISTRY
            ],
        )
        return 0
    statuses = asyncio.run(create_topics(settings))
    print_table(
        ["topic", "partitions", "state"],
        [[s.name, str(s.partitions), "created" if s.created else "exists"] for s in statuses],
    )
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from storage.client import Engine
    from storage.migrate import migrate, status

    settings = StorageSettings.from_env()
    engine = Engine.open(settings)
    cluster = settings.clickhouse_cluster
    try:
        if not args.status:
            applied = migrate(engine, cluster=cluster)
            print(f"applied {len(applied)} migration(s)")
        print_table(
            ["version", "name", "applied at", "note"],
            [
                [
                    f"{m.version:04d}",
                    m.name,
                    m.applied_at.isoformat(timespec="seconds") if m.applied_at else "pending",
                    "changed since applied" if m.drifted else "",
                ]
                for m in status(engine, cluster=cluster)
            ],
        )
    finally:
        engine.close()
    return 0
