"""Cluster mode: rewrite single-node migration statements for a ClickHouse cluster. Pure.

With ``PULSELINE_CLICKHOUSE_CLUSTER`` set, every table ``<db>.<t>`` of a migration becomes

- ``<db>.<t>_local``: the same columns on every node (``ON CLUSTER``), with the engine made
  replicated (``ReplacingMergeTree(v)`` → ``ReplicatedReplacingMergeTree(
  '/clickhouse/tables/{shard}/{database}/{table}', '{replica}', v)``);
- ``<db>.<t>``: a ``Distributed`` table over the local ones, so the sink's inserts and the
  read API's queries keep using the name they already use.

A plain view is created on every node and reads the Distributed tables. A materialized
view is created on every node between the local tables (``FROM <src>_local`` ``TO
<target>_local``): it sees each node's own inserts, which is where a view's trigger fires.
A dictionary is created on every node. A backfill (``INSERT INTO <db>.<t> SELECT``) runs as
written, once: it reads and writes the Distributed tables.

The sharding key keeps every copy of a row on one shard, because ``ReplacingMergeTree``
collapses replays only within a shard. A statement this module cannot translate raises
``ClusterSqlError``: a migration that would silently stay single-node is worse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ZK_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
LEDGER_ZK_PATH = "/clickhouse/tables/all/{database}/{table}"
LOCAL_SUFFIX = "_local"

# Which copies of a row must meet: a replay carries the same event_id (events), and a
# newer snapshot of a counter the same (project, kind, minute) (project_counts).
SHARDING_KEYS = {
    "events": "cityHash64(event_id)",
    "project_counts": "cityHash64(project_id, kind, minute)",
    # The family tables are filled by views on each shard's own `events` inserts; the same
    # key keeps a direct insert's rows where the view would have put them.
    **{
        t: "cityHash64(event_id)"
        for t in ("errors", "transactions", "pageviews", "web_vitals", "check_ins", "metrics")
    },
}

_CREATE_TABLE = re.compile(
    r"^CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>\w+)\.(?P<table>\w+)\s*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ENGINE = re.compile(r"ENGINE\s*=\s*(?P<name>\w*MergeTree)\s*(?:\((?P<args>[^)]*)\))?", re.I)
_ORDER_BY = re.compile(r"ORDER\s+BY\s+(\([^)]*\)|\w+(?:\([^)]*\))?)", re.IGNORECASE)
_CREATE_VIEW = re.compile(
    r"^CREATE\s+VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>\w+)\.(?P<view>\w+)\s+AS\s+(?P<q>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_CREATE_MV = re.compile(
    r"^CREATE\s+MATERIALIZED\s+VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>\w+)\.(?P<view>\w+)\s+"
    r"TO\s+(?P<tdb>\w+)\.(?P<target>\w+)\s+AS\s+(?P<q>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_FROM = re.compile(r"\bFROM\s+(?P<db>\w+)\.(?P<table>\w+)\b", re.IGNORECASE)
_CREATE_DICTIONARY = re.compile(
    r"^CREATE\s+DICTIONARY\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>\w+\.\w+)\s*(?P<rest>\(.+)$",
    re.IGNORECASE | re.DOTALL,
)
_CREATE_DATABASE = re.compile(r"^CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*$", re.I)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(?P<db>\w+)\.(?P<table>\w+)\s+(?P<rest>.+)$", re.I | re.S)
_COLUMN_CHANGE = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.IGNORECASE)
_DROP = re.compile(r"^DROP\s+TABLE\s+(?P<ie>IF\s+EXISTS\s+)?(?P<db>\w+)\.(?P<table>\w+)\s*$", re.I)
_INSERT_SELECT = re.compile(r"^INSERT\s+INTO\s+\w+\.\w+\s+SELECT\b", re.IGNORECASE)
_NON_REPLICATED_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b", re.IGNORECASE)


class ClusterSqlError(ValueError):
    """A migration statement has no cluster-mode translation; the message quotes it."""


@dataclass(frozen=True)
class Cluster:
    """The cluster's name as ClickHouse's ``remote_servers`` (or the operator) knows it."""

    name: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", self.name):
            raise ValueError(f"not a cluster name: {self.name!r}")

    @property
    def on(self) -> str:
        return f"ON CLUSTER `{self.name}`"

    def statements(self, statement: str) -> list[str]:
        """The cluster-mode statements that replace one single-node statement."""
        text = statement.strip()
        if m := _CREATE_DATABASE.match(text):
            return [f"CREATE DATABASE {m[1] or ''}{m[2]} {self.on}"]
        if m := _CREATE_TABLE.match(text):
            return self._create_table(m)
        if m := _CREATE_MV.match(text):
            return [self._materialized_view(m)]
        if m := _CREATE_DICTIONARY.match(text):
            return [f"CREATE DICTIONARY {m['ine'] or ''}{m['name']} {self.on}\n{m['rest']}"]
        if m := _CREATE_VIEW.match(text):  # a plain view reads the Distributed tables
            return [f"CREATE VIEW {m['ine'] or ''}{m['db']}.{m['view']} {self.on} AS {m['q']}"]
        if m := _ALTER.match(text):
            local = f"ALTER TABLE {m['db']}.{m['table']}{LOCAL_SUFFIX} {self.on} {m['rest']}"
            if _COLUMN_CHANGE.match(m["rest"]):
                return [local, f"ALTER TABLE {m['db']}.{m['table']} {self.on} {m['rest']}"]
            return [local]
        if _INSERT_SELECT.match(text):  # a backfill: Distributed to Distributed, run once
            return [text]
        if m := _DROP.match(text):
            ie = m["ie"] or ""
            return [
                f"DROP TABLE {ie}{m['db']}.{m['table']} {self.on} SYNC",
                f"DROP TABLE {ie}{m['db']}.{m['table']}{LOCAL_SUFFIX} {self.on} SYNC",
            ]
        raise ClusterSqlError(f"no cluster-mode translation for: {_head(text)}")

    def _create_table(self, m: re.Match[str]) -> list[str]:
        db, table, ine, rest = m["db"], m["table"], m["ine"] or "", m["rest"]
        engine = _ENGINE.search(rest)
        if engine is None:
            raise ClusterSqlError(f"{db}.{table}: only MergeTree-family engines can be replicated")
        replicated = _replicated(engine["name"], engine["args"], ZK_PATH)
        body = rest[: engine.start()] + replicated + rest[engine.end() :]
        body = _NON_REPLICATED_WINDOW.sub("replicated_deduplication_window", body)
        local = f"{table}{LOCAL_SUFFIX}"
        key = SHARDING_KEYS.get(table) or _hash_of_order_by(db, table, rest)
        return [
            f"CREATE TABLE {ine}{db}.{local} {self.on}\n{body}",
            f"CREATE TABLE {ine}{db}.{table} {self.on} AS {db}.{local}\n"
            f"ENGINE = Distributed('{self.name}', '{db}', '{local}', {key})",
        ]

    def _materialized_view(self, m: re.Match[str]) -> str:
        source = _FROM.search(m["q"])
        if source is None:
            raise ClusterSqlError(f"{m['db']}.{m['view']}: a materialized view needs FROM db.table")
        query = (
            m["q"][: source.start()]
            + f"FROM {source['db']}.{source['table']}{LOCAL_SUFFIX}"
            + m["q"][source.end() :]
        )
        return (
            f"CREATE MATERIALIZED VIEW {m['ine'] or ''}{m['db']}.{m['view']} {self.on} "
            f"TO {m['tdb']}.{m['target']}{LOCAL_SUFFIX} AS {query}"
        )

    def ledger(self, database: str) -> list[str]:
        """The migration ledger: one replicated table that every node of every shard shares."""
        return [
            f"CREATE DATABASE IF NOT EXISTS {database} {self.on}",
            f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations {self.on} "
            "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) "
            f"{_replicated('MergeTree', None, LEDGER_ZK_PATH)} ORDER BY version",
        ]


def _replicated(engine: str, args: str | None, path: str) -> str:
    if engine.startswith("Replicated"):
        raise ClusterSqlError(f"{engine} is already replicated; write migrations single-node")
    params = [f"'{path}'", "'{replica}'"]
    if args and args.strip():
        params.append(args.strip())
    return f"ENGINE = Replicated{engine}({', '.join(params)})"


def _hash_of_order_by(db: str, table: str, rest: str) -> str:
    order = _ORDER_BY.search(rest)
    if order is None:
        raise ClusterSqlError(f"{db}.{table}: no ORDER BY to derive a sharding key from")
    expr = order[1]
    columns = expr[1:-1].strip() if expr.startswith("(") else expr
    if not columns or expr.lower().startswith("tuple("):
        raise ClusterSqlError(f"{db}.{table}: ORDER BY tuple() gives no sharding key")
    return f"cityHash64({columns})"


def _head(text: str) -> str:
    return " ".join(text.split())[:80]
