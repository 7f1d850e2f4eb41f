-- Every ingested event, one row per event_id.
-- ReplacingMergeTree collapses a replayed row (same sort key) on merge; readers that must
-- never see a duplicate query with FINAL or LIMIT 1 BY event_id (see docs/SCHEMA.md).
-- ORDER BY starts with project and family because every read is scoped to one project
-- and usually one family, then time for range scans.
CREATE TABLE IF NOT EXISTS {db}.events
(
    project_id   UInt32,
    kind         LowCardinality(String),
    timestamp    DateTime64(3, 'UTC'),
    event_id     UUID,
    received_at  DateTime64(3, 'UTC'),
    distinct_id  String,
    session_id   String,
    release      LowCardinality(String),
    environment  LowCardinality(String),
    attributes   String CODEC(ZSTD(3)),
    _topic       LowCardinality(String),
    _partition   UInt16,
    _offset      UInt64,
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, kind, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Events counted per project, family and minute by the processors. A later snapshot of
-- the same key carries a count at least as large, so the greatest count wins on merge.
CREATE TABLE IF NOT EXISTS {db}.project_counts
(
    project_id UInt32,
    kind       LowCardinality(String),
    minute     DateTime('UTC'),
    count      UInt64
)
ENGINE = ReplacingMergeTree(count)
ORDER BY (project_id, kind, minute)
SETTINGS non_replicated_deduplication_window = 10000;
