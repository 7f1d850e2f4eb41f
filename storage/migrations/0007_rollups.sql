-- Rollups of page views for the web dashboard's visitor counts.
--
-- What costs in a web query over weeks is counting distinct visitors: a `count()` over
-- one project's 3M page views of a month takes a tenth of the time of its distinct
-- visitors. So the rollups keep visitor sets, as mergeable `uniqCombined64` states (an
-- exact set while small, a HyperLogLog beyond: 0.2-0.6% off from ten thousand to four
-- million ids, measured), and the read API counts page views on `pageviews`, exactly. A set is not changed by a
-- replayed row: a batch inserted twice with other boundaries, a client's retry or the
-- backfill below can only add a visitor again, never count it twice.
--
-- `storage.analytics_queries` reads a rollup for the whole minutes (hours) inside a
-- range and `pageviews` for the partial ones at its ends, so an answer is as fresh as
-- the table. Both are filled by views on `pageviews` inserts, in the same insert as the
-- sink's batch, and keep a deduplication window like it.
--
-- The series has a row per project and minute. The breakdowns have one per dimension
-- value and hour: per minute there would be about as many rows as page views (a site's
-- pages, referrers and campaigns at a hundred page views a minute), nothing saved.

CREATE TABLE IF NOT EXISTS {db}.pageviews_1m
(
    project_id     UInt32,
    minute         DateTime('UTC'),
    visitors       AggregateFunction(uniqCombined64, String),
    retention_days SimpleAggregateFunction(max, UInt16)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, minute)
TTL minute + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.pageviews_1m_mv TO {db}.pageviews_1m AS
SELECT project_id, toStartOfMinute(timestamp) AS minute,
       uniqCombined64State(distinct_id) AS visitors, max(retention_days) AS retention_days
FROM {db}.pageviews WHERE kind = 'pageview'
GROUP BY project_id, minute;

-- `dimension` is a name of `storage.analytics_queries.EVENT_DIMENSIONS`.
CREATE TABLE IF NOT EXISTS {db}.pageview_dimensions_1h
(
    project_id     UInt32,
    dimension      LowCardinality(String),
    hour           DateTime('UTC'),
    value          String,
    visitors       AggregateFunction(uniqCombined64, String),
    retention_days SimpleAggregateFunction(max, UInt16)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, dimension, hour, value)
TTL hour + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.pageview_dimensions_1h_mv
TO {db}.pageview_dimensions_1h AS
SELECT project_id, dim.1 AS dimension, toStartOfHour(timestamp) AS hour, dim.2 AS value,
       uniqCombined64State(distinct_id) AS visitors, max(retention_days) AS retention_days
FROM {db}.pageviews
ARRAY JOIN [('page', page), ('referrer', referrer), ('utm_source', utm_source),
            ('utm_medium', utm_medium), ('utm_campaign', utm_campaign)] AS dim
WHERE kind = 'pageview'
GROUP BY project_id, dimension, hour, value;

-- Page views stored before this migration (sets: rows the views add meanwhile are harmless).
INSERT INTO {db}.pageviews_1m
SELECT project_id, toStartOfMinute(timestamp) AS minute,
       uniqCombined64State(distinct_id) AS visitors, max(retention_days) AS retention_days
FROM {db}.pageviews WHERE kind = 'pageview'
GROUP BY project_id, minute;

INSERT INTO {db}.pageview_dimensions_1h
SELECT project_id, dim.1 AS dimension, toStartOfHour(timestamp) AS hour, dim.2 AS value,
       uniqCombined64State(distinct_id) AS visitors, max(retention_days) AS retention_days
FROM {db}.pageviews
ARRAY JOIN [('page', page), ('referrer', referrer), ('utm_source', utm_source),
            ('utm_medium', utm_medium), ('utm_campaign', utm_campaign)] AS dim
WHERE kind = 'pageview'
GROUP BY project_id, dimension, hour, value
