"""The SQL the PostgreSQL collector runs (PostgreSQL 10 and later), and what its failures mean.

Every statement carries ``OWN_MARKER`` in a comment, so the collector can leave its own
statements out of the pg_stat_statements top N.
"""

from __future__ import annotations

from psycopg import sql

from pulseline.collectors.pg_metrics import OWN_MARKER

_TAG = f"/* {OWN_MARKER} */"

# pg_database_size needs CONNECT on the database or membership of pg_read_all_stats;
# without either the size is left out rather than failing the whole query.
DATABASES = f"""
SELECT {_TAG} d.datname, s.xact_commit, s.xact_rollback, s.blks_read, s.blks_hit,
       s.deadlocks, s.temp_bytes, s.temp_files, s.stats_reset::text,
       CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                 OR pg_has_role('pg_read_all_stats', 'MEMBER')
            THEN pg_database_size(d.oid) END
FROM pg_stat_database s JOIN pg_database d ON d.oid = s.datid
WHERE NOT d.datistemplate AND d.datallowconn
ORDER BY d.datname
"""

CONNECTIONS = f"""
SELECT {_TAG} datname, state, count(*)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND datname IS NOT NULL
GROUP BY datname, state
"""

MAX_CONNECTIONS = f"SELECT {_TAG} current_setting('max_connections')::int"

IN_RECOVERY = f"SELECT {_TAG} pg_is_in_recovery()"

REPLICAS = f"""
SELECT {_TAG} application_name, client_addr::text, state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8,
       extract(epoch FROM replay_lag)::float8
FROM pg_stat_replication
"""

# On a standby with nothing new to replay, the last replayed transaction can be old
# while the standby is fully caught up: that is no lag.
STANDBY_LAG = f"""
SELECT {_TAG} CASE
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
END::float8
"""

STATEMENTS_SCHEMA = f"""
SELECT {_TAG} n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

TABLES = f"""
SELECT {_TAG} n.nspname, c.relname, pg_total_relation_size(c.oid)::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
ORDER BY 3 DESC, 1, 2
LIMIT %s
"""


def statements_query(schema: str, server_version: int) -> sql.Composed:
    """pg_stat_statements of every database; column names changed in 13 and 17."""
    total = "total_exec_time" if server_version >= 130000 else "total_time"
    since = "s.stats_since::text" if server_version >= 170000 else "NULL::text"
    text = (
        f"SELECT {_TAG} d.datname, s.queryid, s.query, s.calls, s.{{total}}, s.rows, {since}"
        " FROM {schema}.pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
        " WHERE s.queryid IS NOT NULL"
    )
    return sql.SQL(text).format(total=sql.Identifier(total), schema=sql.Identifier(schema))


NOT_LOADED = "55000"  # object_not_in_prerequisite_state: not in shared_preload_libraries
NO_PRIVILEGE = "42501"
_CONTINUE = "Statement metrics are skipped; the other metrics continue."


def statements_problem(database: str, sqlstate: str | None = None, detail: str = "") -> str:
    """The one message for pg_stat_statements being unusable; ``sqlstate`` ``None`` means
    the extension is not installed in ``database``."""
    if sqlstate is None:
        return (
            f"pg_stat_statements is not installed in database {database!r}: run "
            "CREATE EXTENSION pg_stat_statements there (the server also needs "
            f"shared_preload_libraries = 'pg_stat_statements'). {_CONTINUE}"
        )
    if sqlstate == NOT_LOADED:
        return (
            "pg_stat_statements is installed but not loaded: add it to "
            f"shared_preload_libraries and restart PostgreSQL. {_CONTINUE}"
        )
    if sqlstate == NO_PRIVILEGE:
        return (
            "not allowed to read pg_stat_statements: GRANT pg_monitor (or pg_read_all_stats) "
            f"to the collector's role. {_CONTINUE}"
        )
    return f"cannot read pg_stat_statements ({detail or sqlstate}). {_CONTINUE}"
