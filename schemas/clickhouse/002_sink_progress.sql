-- Sink progress: the highest Kafka offset each table holds, per source
-- topic and partition. Each materialized view is fed by the same INSERT
-- that loads its table, so a batch and its progress land together; on
-- partition assignment the sink resumes after max_offset (pkg/sink).
-- Read with: SELECT src_topic, src_partition, maxMerge(max_offset)
--            FROM sink_progress WHERE table_name = 'clicks' GROUP BY src_topic, src_partition

CREATE TABLE IF NOT EXISTS sink_progress (
    table_name String,
    src_topic LowCardinality(String),
    src_partition UInt32,
    max_offset AggregateFunction(max, UInt64)
) ENGINE = AggregatingMergeTree()
ORDER BY (table_name, src_topic, src_partition);

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_impressions TO sink_progress AS
SELECT 'impressions' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM impressions
GROUP BY src_topic, src_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_clicks TO sink_progress AS
SELECT 'clicks' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM clicks
GROUP BY src_topic, src_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_installs TO sink_progress AS
SELECT 'installs' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM installs
GROUP BY src_topic, src_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_events TO sink_progress AS
SELECT 'events' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM events
GROUP BY src_topic, src_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_rejected TO sink_progress AS
SELECT 'rejected' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM rejected
GROUP BY src_topic, src_partition;
