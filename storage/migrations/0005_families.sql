-- One typed ingest table per event family, and retention from each project's settings.
--
-- `events` stays the landing table the sink writes (one insert per batch, with its
-- deduplication token). A materialized view per family copies each inserted block into
-- the family's table in the same insert, with the attributes the dashboards read pulled
-- out into typed columns, so no read parses JSON. The deduplication token reaches the
-- views' inserts too: a retried batch is dropped from every table, which is why each
-- family table keeps a deduplication window like `events`.
--
-- Family tables have the identity and engine of `events` (ReplacingMergeTree, sort key
-- ending in timestamp, event_id), so a replayed row collapses on merge and readers use FINAL.
--
-- Retention: `retention_days` is looked up once per row at insert, from the project's
-- settings (its own value, else its tier's), through the `project_retention` dictionary;
-- 400 days when the project is unknown. A table TTL cannot call a dictionary itself
-- (ClickHouse refuses non-deterministic TTL expressions), hence the stored column. A
-- changed setting applies to rows inserted after the dictionary reloads (within 60 s).

CREATE DICTIONARY IF NOT EXISTS {db}.project_retention
(
    project_id     UInt64,
    retention_days UInt16
)
PRIMARY KEY project_id
SOURCE(CLICKHOUSE(QUERY 'SELECT project_id, coalesce(retention_days, multiIf(tier = ''starter'', 30, tier = ''pro'', 90, tier = ''enterprise'', 365, 7)) AS retention_days FROM {db}.dim_projects'))
LIFETIME(MIN 30 MAX 60)
LAYOUT(HASHED());

ALTER TABLE {db}.events
    ADD COLUMN IF NOT EXISTS retention_days UInt16
        DEFAULT dictGetOrDefault('{db}.project_retention', 'retention_days', toUInt64(project_id), toUInt16(400));

ALTER TABLE {db}.events MODIFY TTL toDateTime(timestamp) + toIntervalDay(retention_days);

-- Errors: one row per error event. `exception_type`/`exception_value` are the last
-- exception of the chain (Sentry's order: the one raised last comes last).
CREATE TABLE IF NOT EXISTS {db}.errors
(
    project_id      UInt32,
    timestamp       DateTime64(3, 'UTC'),
    event_id        UUID,
    distinct_id     String,
    session_id      String,
    release         LowCardinality(String),
    environment     LowCardinality(String),
    level           LowCardinality(String),
    platform        LowCardinality(String),
    exception_type  String,
    exception_value String,
    message         String,
    url             String,
    retention_days  UInt16,
    _inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, timestamp, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.errors_mv TO {db}.errors AS
SELECT project_id, timestamp, event_id, distinct_id, session_id, release, environment,
       JSONExtractString(attributes, 'level') AS level,
       JSONExtractString(attributes, 'platform') AS platform,
       JSONExtractString(attributes, 'exception', -1, 'type') AS exception_type,
       JSONExtractString(attributes, 'exception', -1, 'value') AS exception_value,
       JSONExtractString(attributes, 'message') AS message,
       JSONExtractString(attributes, 'url') AS url,
       retention_days, _inserted_at
FROM {db}.events WHERE kind = 'error';

-- Transactions and requests: `route` is the route, else the transaction name. `failed`
-- is a server-side failure: HTTP 5xx, or a Sentry status naming one (client errors such
-- as 4xx or not_found are the caller's). Read per route for latency percentiles.
CREATE TABLE IF NOT EXISTS {db}.transactions
(
    project_id     UInt32,
    timestamp      DateTime64(3, 'UTC'),
    event_id       UUID,
    distinct_id    String,
    release        LowCardinality(String),
    environment    LowCardinality(String),
    route          LowCardinality(String),
    method         LowCardinality(String),
    status         LowCardinality(String),
    http_status    UInt16,
    duration_ms    Float64,
    failed         Bool,
    trace_id       String,
    retention_days UInt16,
    _inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, timestamp, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.transactions_mv TO {db}.transactions AS
SELECT project_id, timestamp, event_id, distinct_id, release, environment,
       if(JSONExtractString(attributes, 'route') != '', JSONExtractString(attributes, 'route'),
          JSONExtractString(attributes, 'name')) AS route,
       JSONExtractString(attributes, 'method') AS method,
       if(JSONType(attributes, 'status') = 'String', JSONExtractString(attributes, 'status'),
          JSONExtractRaw(attributes, 'status')) AS status,
       JSONExtractUInt(attributes, 'http_status') AS http_status,
       JSONExtractFloat(attributes, 'duration_ms') AS duration_ms,
       http_status >= 500 OR toUInt16OrZero(status) >= 500
           OR lower(status) IN ('internal_error', 'unknown_error', 'unknown', 'unavailable',
                                'deadline_exceeded', 'data_loss', 'unimplemented', 'aborted',
                                'error') AS failed,
       JSONExtractString(attributes, 'trace_id') AS trace_id,
       retention_days, _inserted_at
FROM {db}.events WHERE kind = 'transaction';

-- Page views and product events in one table, since funnels and retention read both in
-- one pass. `page` is the `path` attribute, else the path of `url`; `name` is a custom
-- event's name ('' for a page view).
CREATE TABLE IF NOT EXISTS {db}.pageviews
(
    project_id     UInt32,
    kind           LowCardinality(String),
    timestamp      DateTime64(3, 'UTC'),
    event_id       UUID,
    distinct_id    String,
    session_id     String,
    page           String,
    url            String,
    referrer       String,
    title          String,
    utm_source     LowCardinality(String),
    utm_medium     LowCardinality(String),
    utm_campaign   LowCardinality(String),
    name           LowCardinality(String),
    retention_days UInt16,
    _inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, kind, timestamp, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.pageviews_mv TO {db}.pageviews AS
SELECT project_id, kind, timestamp, event_id, distinct_id, session_id,
       if(JSONExtractString(attributes, 'path') != '', JSONExtractString(attributes, 'path'),
          path(JSONExtractString(attributes, 'url'))) AS page,
       JSONExtractString(attributes, 'url') AS url,
       JSONExtractString(attributes, 'referrer') AS referrer,
       JSONExtractString(attributes, 'title') AS title,
       JSONExtractString(attributes, 'utm_source') AS utm_source,
       JSONExtractString(attributes, 'utm_medium') AS utm_medium,
       JSONExtractString(attributes, 'utm_campaign') AS utm_campaign,
       if(kind = 'event', JSONExtractString(attributes, 'name'), '') AS name,
       retention_days, _inserted_at
FROM {db}.events WHERE kind IN ('pageview', 'event');

-- Web vitals: one measurement per row; `page` as for page views.
CREATE TABLE IF NOT EXISTS {db}.web_vitals
(
    project_id     UInt32,
    timestamp      DateTime64(3, 'UTC'),
    event_id       UUID,
    distinct_id    String,
    page           String,
    name           LowCardinality(String),
    value          Float64,
    rating         LowCardinality(String),
    retention_days UInt16,
    _inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, timestamp, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.web_vitals_mv TO {db}.web_vitals AS
SELECT project_id, timestamp, event_id, distinct_id,
       if(JSONExtractString(attributes, 'path') != '', JSONExtractString(attributes, 'path'),
          path(JSONExtractString(attributes, 'url'))) AS page,
       JSONExtractString(attributes, 'name') AS name,
       JSONExtractFloat(attributes, 'value') AS value,
       JSONExtractString(attributes, 'rating') AS rating,
       retention_days, _inserted_at
FROM {db}.events WHERE kind = 'web_vital';

-- Check-ins as received (the paired runs are in `runs`, from the processors).
CREATE TABLE IF NOT EXISTS {db}.check_ins
(
    project_id     UInt32,
    timestamp      DateTime64(3, 'UTC'),
    event_id       UUID,
    monitor        String,
    monitor_id     String,
    status         LowCardinality(String),
    exit_code      Nullable(UInt8),
    run_id         String,
    duration_ms    Nullable(Float64),
    output_size    Nullable(UInt64),
    source         LowCardinality(String),
    retention_days UInt16,
    _inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, monitor, timestamp, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.check_ins_mv TO {db}.check_ins AS
SELECT project_id, timestamp, event_id,
       JSONExtractString(attributes, 'monitor') AS monitor,
       JSONExtractString(attributes, 'monitor_id') AS monitor_id,
       JSONExtractString(attributes, 'status') AS status,
       JSONExtract(attributes, 'exit_code', 'Nullable(UInt8)') AS exit_code,
       JSONExtractString(attributes, 'run_id') AS run_id,
       JSONExtract(attributes, 'duration_ms', 'Nullable(Float64)') AS duration_ms,
       JSONExtract(attributes, 'output_size', 'Nullable(UInt64)') AS output_size,
       JSONExtractString(attributes, 'source') AS source,
       retention_days, _inserted_at
FROM {db}.events WHERE kind = 'check_in';

-- Metrics: read one name at a time, so the name leads the sort key after the project.
CREATE TABLE IF NOT EXISTS {db}.metrics
(
    project_id     UInt32,
    name           LowCardinality(String),
    timestamp      DateTime64(3, 'UTC'),
    event_id       UUID,
    value          Float64,
    type           LowCardinality(String),
    unit           LowCardinality(String),
    tags           Map(LowCardinality(String), String),
    retention_days UInt16,
    _inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_inserted_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, name, timestamp, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.metrics_mv TO {db}.metrics AS
SELECT project_id, JSONExtractString(attributes, 'name') AS name, timestamp, event_id,
       JSONExtractFloat(attributes, 'value') AS value,
       JSONExtractString(attributes, 'type') AS type,
       JSONExtractString(attributes, 'unit') AS unit,
       JSONExtract(attributes, 'tags', 'Map(String, String)') AS tags,
       retention_days, _inserted_at
FROM {db}.events WHERE kind = 'metric'
