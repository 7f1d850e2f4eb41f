-- Per-project retention for the derived tables, as for the events (migration 0005).
--
-- Each row stores its project's retention days, looked up once at insert through the
-- `project_retention` dictionary, and expires by it (400 days for an unknown project, the
-- fixed retention these tables had before). The column is MATERIALIZED: it is not part of
-- `SELECT *`, so the rows the read API returns are unchanged, and the sink's inserts,
-- which name their columns, need not know it. Rows stored before this migration take their
-- project's retention when the new TTL is applied to the existing parts.
-- `monitor_states` (one current row per monitor) keeps no TTL.

ALTER TABLE {db}.incidents
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.incidents MODIFY TTL toDateTime(updated_at) + toIntervalDay(retention_days);

ALTER TABLE {db}.runs
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.runs MODIFY TTL toDateTime(at) + toIntervalDay(retention_days);

ALTER TABLE {db}.deliveries
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.deliveries MODIFY TTL toDateTime(at) + toIntervalDay(retention_days);

ALTER TABLE {db}.issues
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.issues MODIFY TTL toDateTime(last_seen) + toIntervalDay(retention_days);

ALTER TABLE {db}.error_groups
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.error_groups MODIFY TTL toDateTime(timestamp) + toIntervalDay(retention_days);

ALTER TABLE {db}.sessions
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.sessions MODIFY TTL toDateTime(last_seen) + toIntervalDay(retention_days);

ALTER TABLE {db}.stats_snapshots
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.stats_snapshots MODIFY TTL toDateTime(at) + toIntervalDay(retention_days);

ALTER TABLE {db}.anomalies
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.anomalies MODIFY TTL toDateTime(at) + toIntervalDay(retention_days);

ALTER TABLE {db}.project_counts
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        MATERIALIZED dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.project_counts MODIFY TTL toDateTime(minute) + toIntervalDay(retention_days)
