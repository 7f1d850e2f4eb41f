-- Finding one event by its id (the read API's event detail, the pipeline bench's
-- freshness probe). `events` is sorted by project, family and time, so without an index
-- the lookup reads the event_id of every row of the project, and slows as history grows.
-- A bloom filter per granule (8,192 rows) lets the read skip every granule that cannot
-- hold the id; at 0.1% false positives it costs about 15 bits per row.
ALTER TABLE {db}.events ADD INDEX IF NOT EXISTS event_id_bloom event_id TYPE bloom_filter(0.001) GRANULARITY 1;

-- Rows stored before this migration get the index too (a background mutation).
ALTER TABLE {db}.events MATERIALIZE INDEX event_id_bloom;
