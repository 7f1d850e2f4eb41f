-- Control-plane entities mirrored from the compacted control.entities topic, so analysts can
-- join project, monitor and channel names onto events. One row per (type, id); the Kafka
-- offset is the version, so the newest record wins on merge, and a tombstone arrives as a
-- row with is_deleted = 1 that FINAL hides. Secrets (key hashes, channel config and
-- secrets) are never mirrored.
CREATE TABLE IF NOT EXISTS {db}.control_entities
(
    type       LowCardinality(String),
    id         String,
    project_id Nullable(UInt32),
    name       String,
    slug       String,
    data       String CODEC(ZSTD(3)),
    version    UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (type, id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE VIEW IF NOT EXISTS {db}.dim_projects AS
SELECT toUInt32(id) AS project_id, name, slug,
       JSONExtractString(data, 'tier') AS tier,
       JSONExtract(data, 'retention_days', 'Nullable(UInt32)') AS retention_days
FROM {db}.control_entities FINAL WHERE type = 'project';

CREATE VIEW IF NOT EXISTS {db}.dim_monitors AS
SELECT id AS monitor_id, project_id, name, slug,
       JSONExtractString(data, 'schedule') AS schedule,
       JSONExtractBool(data, 'paused') AS paused
FROM {db}.control_entities FINAL WHERE type = 'monitor';

CREATE VIEW IF NOT EXISTS {db}.dim_channels AS
SELECT id AS channel_id, project_id, name, slug, JSONExtractString(data, 'type') AS channel_type
FROM {db}.control_entities FINAL WHERE type = 'channel';

CREATE VIEW IF NOT EXISTS {db}.dim_rules AS
SELECT id AS rule_id, project_id, name, slug FROM {db}.control_entities FINAL WHERE type = 'rule';

CREATE VIEW IF NOT EXISTS {db}.dim_api_keys AS
SELECT id AS key_id, project_id, name, JSONExtractString(data, 'scope') AS scope,
       JSONExtractString(data, 'prefix') AS prefix,
       JSONExtractString(data, 'revoked_at') AS revoked_at
FROM {db}.control_entities FINAL WHERE type = 'api_key'
