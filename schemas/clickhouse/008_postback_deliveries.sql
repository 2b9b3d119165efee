-- The forwarder's delivery log (deliveries.v1): one row per callback
-- attempt to a publisher endpoint, plus one for a delivery dropped without
-- an attempt. Loaded by the sink like every other topic (exactly once, by
-- src_topic/src_partition/src_offset). "Did publisher X get install Y,
-- when, and what did it answer?":
--   SELECT attempt, attempted_at, status, outcome, error, response
--   FROM postback_deliveries WHERE endpoint_id = 'X' AND event_id = 'Y' ORDER BY attempt

CREATE TABLE IF NOT EXISTS postback_deliveries (
    delivery_id String,
    endpoint_id LowCardinality(String),
    publisher LowCardinality(String),
    kind Enum8('install' = 1, 'event' = 2),
    event_id String,
    app_id LowCardinality(String),
    campaign_id LowCardinality(String),
    media_source LowCardinality(String),
    converted_at DateTime('UTC'),
    attempt UInt16,
    attempted_at DateTime('UTC'),
    latency_ms UInt32,
    method LowCardinality(String),
    host LowCardinality(String),
    status UInt16,
    error String,
    response String,
    outcome Enum8('delivered' = 1, 'retrying' = 2, 'failed' = 3, 'expired' = 4, 'dropped' = 5),
    final UInt8,
    next_attempt_at Nullable(DateTime('UTC')),
    payout Decimal(18, 6),
    payout_currency LowCardinality(String),
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (endpoint_id, attempted_at, delivery_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_postback_deliveries TO sink_progress AS
SELECT 'postback_deliveries' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM postback_deliveries
GROUP BY src_topic, src_partition;

-- Per endpoint and day (of the attempt): deliveries attempted, their final
-- outcomes, the success rate among the finished ones, attempt latency, and
-- the backlog (deliveries with no final outcome yet). Payout is summed
-- over delivered callbacks, per currency.
CREATE VIEW IF NOT EXISTS postback_delivery_stats_daily AS
SELECT
    day, endpoint_id, publisher,
    deliveries, attempts, delivered, failed, expired, dropped,
    if(delivered + failed + expired + dropped = 0, NULL, delivered / (delivered + failed + expired + dropped)) AS success_rate,
    avg_latency_ms, p99_latency_ms,
    deliveries - finished AS backlog,
    payout, payout_currency
FROM (
    SELECT
        toDate(attempted_at) AS day, endpoint_id, any(publisher) AS publisher,
        uniqExact(delivery_id) AS deliveries,
        countIf(attempt > 0) AS attempts,
        uniqExactIf(delivery_id, outcome = 'delivered') AS delivered,
        uniqExactIf(delivery_id, outcome = 'failed') AS failed,
        uniqExactIf(delivery_id, outcome = 'expired') AS expired,
        uniqExactIf(delivery_id, outcome = 'dropped') AS dropped,
        uniqExactIf(delivery_id, final = 1) AS finished,
        avgIf(latency_ms, attempt > 0) AS avg_latency_ms,
        quantileIf(0.99)(latency_ms, attempt > 0) AS p99_latency_ms,
        sumIf(payout, outcome = 'delivered') AS payout,
        arrayStringConcat(arraySort(groupUniqArrayIf(payout_currency, outcome = 'delivered' AND payout_currency != '')), ',') AS payout_currency
    FROM postback_deliveries
    GROUP BY day, endpoint_id
);
