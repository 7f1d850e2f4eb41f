"""Versioned SQL migrations (``storage/migrations/NNNN_name.sql``), applied in order.

Each applied file is recorded in ``schema_migrations`` with its checksum; re-running
applies nothing new. A recorded file whose text changed is reported, not re-applied.

Cluster mode (``cluster=`` a cluster name, from ``PULSELINE_CLICKHOUSE_CLUSTER``): each
statement is rewritten by
``storage.cluster`` (replicated ``<table>_local`` plus a Distributed ``<table>``, all
``ON CLUSTER``) and the ledger is one replicated table shared by every node. Unset, the
statements sent are exactly the files' text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.client import Engine
from storage.cluster import Cluster

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        text = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip().replace("{db}", database) for s in text.split(";") if s.strip()]

    def cluster_statements(self, database: str, cluster: Cluster) -> list[str]:
        return [out for s in self.statements(database) for out in cluster.statements(s)]


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    applied_at: datetime | None
    drifted: bool


def discover(folder: Path = MIGRATIONS) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} must be named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two migrations share a version number")
    return found


def _cluster(name: str | None) -> Cluster | None:
    return Cluster(name) if name else None


def _ensure_ledger(engine: Engine, cluster: Cluster | None = None) -> None:
    db = engine.database
    if cluster is not None:
        for statement in cluster.ledger(db):
            engine.call(engine.client.command, statement)
        return
    engine.call(engine.client.command, f"CREATE DATABASE IF NOT EXISTS {db}")
    engine.call(
        engine.client.command,
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY version",
    )


def _applied(engine: Engine) -> dict[int, tuple[str, datetime]]:
    result = engine.call(
        engine.client.query,
        f"SELECT version, checksum, applied_at FROM {engine.database}.schema_migrations",
    )
    return {int(v): (c, a) for v, c, a in result.result_rows}


def status(
    engine: Engine,
    migrations: list[Migration] | None = None,
    *,
    cluster: str | None = None,
) -> list[MigrationStatus]:
    _ensure_ledger(engine, _cluster(cluster))
    applied = _applied(engine)
    out = []
    for m in migrations if migrations is not None else discover():
        record = applied.get(m.version)
        out.append(
            MigrationStatus(
                m.version,
                m.name,
                record[1] if record else None,
                bool(record and record[0] != m.checksum),
            )
        )
    return out


def migrate(
    engine: Engine,
    migrations: list[Migration] | None = None,
    *,
    cluster: str | None = None,
) -> list[Migration]:
    """Apply what is not yet recorded; returns the migrations applied now."""
    on = _cluster(cluster)
    _ensure_ledger(engine, on)
    applied = _applied(engine)
    done = []
    for m in migrations if migrations is not None else discover():
        if m.version in applied:
            continue
        db = engine.database
        for statement in m.cluster_statements(db, on) if on else m.statements(db):
            engine.call(engine.client.command, statement)
        engine.call(
            engine.client.insert,
            f"{engine.database}.schema_migrations",
            [[m.version, m.name, m.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
        )
        done.append(m)
    return done
