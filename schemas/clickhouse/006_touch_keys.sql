-- Ids of clicks and impressions sent with an idempotency key, so that the
-- sink loads each of them once (docs/sink.md, "Repeated touch ids").
--
-- A client that retries a click or impression after a 503 sends the same
-- Idempotency-Key, and ingest derives the same id from it (a UUIDv5 of the
-- campaign and the key; other touches get a UUIDv7). The first attempt may
-- have reached Kafka after all, so the id can be on the topic twice. Before
-- inserting a batch, the sink looks its keyed ids up here and drops those
-- already loaded; the views below are fed by the same INSERT as the rows,
-- as sink_progress is, so a row and its key land together.
--
-- Only keyed ids are kept (a 36-character id with '5' at the UUID version
-- position; the sink's own test, event.IsKeyedTouchID, is stricter), so
-- this table holds a small part of what clicks and impressions hold, and
-- grows with them: drop its old months together with theirs.
-- index_granularity 256: the sink reads it by id, a few rows per lookup.

CREATE TABLE IF NOT EXISTS touch_keys (
    table_name String,
    id String,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    month UInt32
) ENGINE = MergeTree()
PARTITION BY month
ORDER BY (table_name, id)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS touch_keys_clicks TO touch_keys AS
SELECT 'clicks' AS table_name, click_id AS id, src_topic, src_partition, src_offset, toYYYYMM(time) AS month
FROM clicks
WHERE length(click_id) = 36 AND substring(click_id, 15, 1) = '5';

CREATE MATERIALIZED VIEW IF NOT EXISTS touch_keys_impressions TO touch_keys AS
SELECT 'impressions' AS table_name, impression_id AS id, src_topic, src_partition, src_offset, toYYYYMM(time) AS month
FROM impressions
WHERE length(impression_id) = 36 AND substring(impression_id, 15, 1) = '5';
