-- Tables of the processors' derived topics (derived.*, alerting.deliveries).
--
-- Versioned records (one current row per identity, newest `version` wins) use
-- ReplacingMergeTree(version) whose ORDER BY is exactly the identity, project first: a
-- replayed or superseded row then collapses on merge, and readers query with FINAL.
-- ReplacingMergeTree collapses only within one partition, so a versioned table is
-- partitioned only by a column that never changes between versions of one identity.
-- Append-only logs use MergeTree, partitioned by month; readers hide a replayed copy with
-- LIMIT 1 BY its identity.
--
-- Retention: per-project retention lives in control data (dim_projects.retention_days),
-- which a TTL expression cannot read without a dictionary, so every derived table keeps a
-- fixed 400 days (the read API's longest range). See docs/SCHEMA.md.

-- Incidents: every transition of an incident, keyed by its id. opened_at never changes for
-- one incident, so it can partition. Read by project, by state/kind, newest update first.
CREATE TABLE IF NOT EXISTS {db}.incidents
(
    project_id     UInt32,
    id             String,
    kind           LowCardinality(String),
    severity       LowCardinality(String),
    state          LowCardinality(String),
    dedup_key      String,
    title          String,
    explanation    String,
    links          String,
    monitor_id     String,
    tags           Array(LowCardinality(String)),
    occurrences    UInt32,
    opened_at      DateTime64(3, 'UTC'),
    updated_at     DateTime64(3, 'UTC'),
    resolved_at    Nullable(DateTime64(3, 'UTC')),
    resolve_reason String,
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (project_id, id)
TTL toDateTime(updated_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Cron runs: a `running` row is replaced by its finish (higher version). `at` is the start
-- (or the finish of a run that never reported its start), the same for every version of
-- one run, so it partitions. Read per monitor for run lists and uptime.
CREATE TABLE IF NOT EXISTS {db}.runs
(
    project_id   UInt32,
    monitor_id   String,
    monitor_slug String,
    run_id       String,
    at           DateTime64(3, 'UTC'),
    started_at   Nullable(DateTime64(3, 'UTC')),
    finished_at  Nullable(DateTime64(3, 'UTC')),
    duration_ms  Nullable(UInt64),
    status       LowCardinality(String),
    exit_code    Nullable(Int32),
    output_size  Nullable(UInt64),
    output_tail  String CODEC(ZSTD(3)),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, monitor_id, run_id)
TTL toDateTime(at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- A monitor's current state: one row per monitor, few rows, so no partitions.
CREATE TABLE IF NOT EXISTS {db}.monitor_states
(
    project_id       UInt32,
    monitor_id       String,
    monitor_slug     String,
    state            LowCardinality(String),
    last_ping_at     Nullable(DateTime64(3, 'UTC')),
    next_expected_at Nullable(DateTime64(3, 'UTC')),
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, monitor_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Alert delivery log: one row per attempt, never updated. Read per project, newest first.
CREATE TABLE IF NOT EXISTS {db}.deliveries
(
    project_id       UInt32,
    at               DateTime64(3, 'UTC'),
    delivery_id      String,
    attempt          UInt16,
    kind             LowCardinality(String),
    incident_id      String,
    incident_version UInt64,
    state            LowCardinality(String),
    dedup_key        String,
    channel_id       String,
    channel_type     LowCardinality(String),
    status           LowCardinality(String),
    http_status      Nullable(UInt16),
    latency_ms       Nullable(Float64),
    error            String,
    next_attempt_at  Nullable(DateTime64(3, 'UTC'))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, at, delivery_id, attempt)
TTL toDateTime(at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Issues: error events grouped by fingerprint, one current row each. first_seen may move
-- earlier when a late event arrives, so the table is not partitioned.
CREATE TABLE IF NOT EXISTS {db}.issues
(
    project_id    UInt32,
    fingerprint   String,
    title         String,
    culprit       String,
    level         LowCardinality(String),
    status        LowCardinality(String),
    first_seen    DateTime64(3, 'UTC'),
    last_seen     DateTime64(3, 'UTC'),
    count         UInt64,
    users         UInt64,
    first_release String,
    last_release  String,
    rule          LowCardinality(String),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, fingerprint)
TTL toDateTime(last_seen) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Which issue each error event belongs to. Written once per event; the identity is the
-- whole sort key, so a replayed link collapses. Sorted so an issue's newest event is cheap.
CREATE TABLE IF NOT EXISTS {db}.error_groups
(
    project_id  UInt32,
    fingerprint String,
    timestamp   DateTime64(3, 'UTC'),
    event_id    UUID,
    rule        LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, fingerprint, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Sessions: every version of a visit (open, then closed); newest version wins. started_at
-- may move earlier with an out-of-order hit, so the table is not partitioned.
CREATE TABLE IF NOT EXISTS {db}.sessions
(
    project_id  UInt32,
    session_id  String,
    distinct_id String,
    started_at  DateTime64(3, 'UTC'),
    last_seen   DateTime64(3, 'UTC'),
    entry_page  String,
    exit_page   String,
    pageviews   UInt32,
    events      UInt32,
    duration_s  Float64,
    bounce      Bool,
    referrer    String,
    utm_source  LowCardinality(String),
    browser     LowCardinality(String),
    os          LowCardinality(String),
    device_type LowCardinality(String),
    closed      Bool,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, session_id)
TTL toDateTime(last_seen) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Running statistics per series (project, family, name); the newest snapshot wins.
CREATE TABLE IF NOT EXISTS {db}.stats_snapshots
(
    project_id UInt32,
    family     LowCardinality(String),
    name       String,
    count      UInt64,
    mean       Float64,
    variance   Float64,
    stddev     Float64,
    min        Nullable(Float64),
    max        Nullable(Float64),
    p50        Nullable(Float64),
    p95        Nullable(Float64),
    at         DateTime64(3, 'UTC'),
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, family, name)
TTL toDateTime(at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Values the anomaly rules flagged: an append-only log, read per project newest first.
CREATE TABLE IF NOT EXISTS {db}.anomalies
(
    project_id  UInt32,
    at          DateTime64(3, 'UTC'),
    series      String,
    family      LowCardinality(String),
    name        String,
    rule        LowCardinality(String),
    value       Float64,
    score       Float64,
    explanation String,
    event_id    String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, at, series, rule, event_id)
TTL toDateTime(at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000
