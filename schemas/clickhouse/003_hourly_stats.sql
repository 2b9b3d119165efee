-- Hourly aggregates of the base tables: one wide SummingMergeTree table,
-- hourly_stats, fed by one materialized view per source table (impressions,
-- clicks, installs, events). docs/analytics.md explains every column.
--
-- One wide table rather than one per source: every measure shares one key,
-- so CTR (impressions and clicks), CVR (clicks and installs), CPI (touches and
-- installs) and ROAS (events and spend) are a single GROUP BY over one table,
-- with no JOIN (18.16 allows one JOIN per SELECT, right side in memory). Each
-- view writes zeros for the other sources' measures; SummingMergeTree folds
-- rows of one key together on merge, whichever view wrote them.
--
-- Rules the materialized views follow (checked on 18.16 and 26.x):
--   * Every column of hourly_stats is produced, with exactly its type: on
--     18.16 a view into a TO table neither fills defaults nor converts types
--     (String is not LowCardinality(String)), and a failing view fails the
--     sink's INSERT after the base table got the rows.
--   * Only sums and counts, nothing that can throw (no division).
--   * A later migration that changes a base-table column these views read
--     (say a new platform in the Enum8) must change hourly_stats' column and
--     recreate the views in the same file, or every insert fails on 18.16.
--   * Rows are loaded once by the sink, so plain count()/sum() are exact.
--   * A view sees only rows inserted after it exists: the migrations run
--     before any data is loaded.
--
-- Money is Decimal(38, 6) (what sum(Decimal(18, 6)) returns), never Float.
-- spend_currency is the currency of the spend columns (the touch's currency,
-- the install's cost_currency; '' on event rows), revenue_currency the
-- currency of revenue (the event's reporting_currency; '' on touch and
-- install rows). Both are part of the key, so amounts in different currencies
-- are never added together.

CREATE TABLE IF NOT EXISTS hourly_stats (
    hour DateTime('UTC'),
    app_id LowCardinality(String),
    platform Enum8('' = 0, 'ios' = 1, 'android' = 2, 'web' = 3),
    media_source LowCardinality(String),
    campaign_id LowCardinality(String),
    adset_id String,
    creative_id String,
    site_id String,
    sub_site_id String,
    country LowCardinality(String),
    spend_currency LowCardinality(String),
    revenue_currency LowCardinality(String),
    impressions UInt64,
    clicks UInt64,
    install_postbacks UInt64,
    installs UInt64,
    reinstalls UInt64,
    rejected_installs UInt64,
    installs_click_id UInt64,
    installs_device_id UInt64,
    installs_probabilistic UInt64,
    installs_view_through UInt64,
    installs_organic UInt64,
    fraud_installs UInt64,
    fraud_click_injection UInt64,
    fraud_ctit_beyond_window UInt64,
    fraud_click_flooding UInt64,
    fraud_mmp_rejected UInt64,
    events UInt64,
    revenue Decimal(38, 6),
    spend_impressions Decimal(38, 6),
    spend_clicks Decimal(38, 6),
    spend_installs Decimal(38, 6)
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, app_id, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, platform, spend_currency, revenue_currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_stats_impressions_mv TO hourly_stats AS
SELECT
    toStartOfHour(time) AS hour,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    currency AS spend_currency,
    CAST('' AS LowCardinality(String)) AS revenue_currency,
    count() AS impressions,
    toUInt64(0) AS clicks,
    toUInt64(0) AS install_postbacks,
    toUInt64(0) AS installs,
    toUInt64(0) AS reinstalls,
    toUInt64(0) AS rejected_installs,
    toUInt64(0) AS installs_click_id,
    toUInt64(0) AS installs_device_id,
    toUInt64(0) AS installs_probabilistic,
    toUInt64(0) AS installs_view_through,
    toUInt64(0) AS installs_organic,
    toUInt64(0) AS fraud_installs,
    toUInt64(0) AS fraud_click_injection,
    toUInt64(0) AS fraud_ctit_beyond_window,
    toUInt64(0) AS fraud_click_flooding,
    toUInt64(0) AS fraud_mmp_rejected,
    toUInt64(0) AS events,
    toDecimal128(0, 6) AS revenue,
    sum(cost) AS spend_impressions,
    toDecimal128(0, 6) AS spend_clicks,
    toDecimal128(0, 6) AS spend_installs
FROM impressions
GROUP BY hour, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, spend_currency;

CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_stats_clicks_mv TO hourly_stats AS
SELECT
    toStartOfHour(time) AS hour,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    currency AS spend_currency,
    CAST('' AS LowCardinality(String)) AS revenue_currency,
    toUInt64(0) AS impressions,
    count() AS clicks,
    toUInt64(0) AS install_postbacks,
    toUInt64(0) AS installs,
    toUInt64(0) AS reinstalls,
    toUInt64(0) AS rejected_installs,
    toUInt64(0) AS installs_click_id,
    toUInt64(0) AS installs_device_id,
    toUInt64(0) AS installs_probabilistic,
    toUInt64(0) AS installs_view_through,
    toUInt64(0) AS installs_organic,
    toUInt64(0) AS fraud_installs,
    toUInt64(0) AS fraud_click_injection,
    toUInt64(0) AS fraud_ctit_beyond_window,
    toUInt64(0) AS fraud_click_flooding,
    toUInt64(0) AS fraud_mmp_rejected,
    toUInt64(0) AS events,
    toDecimal128(0, 6) AS revenue,
    toDecimal128(0, 6) AS spend_impressions,
    sum(cost) AS spend_clicks,
    toDecimal128(0, 6) AS spend_installs
FROM clicks
GROUP BY hour, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, spend_currency;

-- installs counts new installs: reinstall = 0 and rejected = 0 (the MMP did
-- not block it); installs_<match type> split that same count. Fraud counts
-- and install_postbacks cover every row (new, reinstall and rejected), so
-- fraud_installs / install_postbacks is the flagged share. spend_installs is
-- the cost the attribution service put on every row (CPI bid or the
-- postback's own cost), whatever its status.
CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_stats_installs_mv TO hourly_stats AS
SELECT
    toStartOfHour(install_time) AS hour,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    cost_currency AS spend_currency,
    CAST('' AS LowCardinality(String)) AS revenue_currency,
    toUInt64(0) AS impressions,
    toUInt64(0) AS clicks,
    count() AS install_postbacks,
    countIf(reinstall = 0 AND rejected = 0) AS installs,
    countIf(reinstall != 0 AND rejected = 0) AS reinstalls,
    countIf(rejected != 0) AS rejected_installs,
    countIf(reinstall = 0 AND rejected = 0 AND match_type = 'click_id') AS installs_click_id,
    countIf(reinstall = 0 AND rejected = 0 AND match_type = 'device_id') AS installs_device_id,
    countIf(reinstall = 0 AND rejected = 0 AND match_type = 'probabilistic') AS installs_probabilistic,
    countIf(reinstall = 0 AND rejected = 0 AND match_type = 'view_through') AS installs_view_through,
    countIf(reinstall = 0 AND rejected = 0 AND match_type = 'organic') AS installs_organic,
    countIf(notEmpty(fraud_flags)) AS fraud_installs,
    countIf(has(fraud_flags, 'click_injection')) AS fraud_click_injection,
    countIf(has(fraud_flags, 'ctit_beyond_window')) AS fraud_ctit_beyond_window,
    countIf(has(fraud_flags, 'click_flooding')) AS fraud_click_flooding,
    countIf(has(fraud_flags, 'mmp_rejected')) AS fraud_mmp_rejected,
    toUInt64(0) AS events,
    toDecimal128(0, 6) AS revenue,
    toDecimal128(0, 6) AS spend_impressions,
    toDecimal128(0, 6) AS spend_clicks,
    sum(cost) AS spend_installs
FROM installs
GROUP BY hour, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, spend_currency;

-- Events carry their install's attribution; revenue is revenue_reporting,
-- already converted to reporting_currency by the attribution service.
CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_stats_events_mv TO hourly_stats AS
SELECT
    toStartOfHour(event_time) AS hour,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    CAST('' AS LowCardinality(String)) AS spend_currency,
    reporting_currency AS revenue_currency,
    toUInt64(0) AS impressions,
    toUInt64(0) AS clicks,
    toUInt64(0) AS install_postbacks,
    toUInt64(0) AS installs,
    toUInt64(0) AS reinstalls,
    toUInt64(0) AS rejected_installs,
    toUInt64(0) AS installs_click_id,
    toUInt64(0) AS installs_device_id,
    toUInt64(0) AS installs_probabilistic,
    toUInt64(0) AS installs_view_through,
    toUInt64(0) AS installs_organic,
    toUInt64(0) AS fraud_installs,
    toUInt64(0) AS fraud_click_injection,
    toUInt64(0) AS fraud_ctit_beyond_window,
    toUInt64(0) AS fraud_click_flooding,
    toUInt64(0) AS fraud_mmp_rejected,
    count() AS events,
    sum(revenue_reporting) AS revenue,
    toDecimal128(0, 6) AS spend_impressions,
    toDecimal128(0, 6) AS spend_clicks,
    toDecimal128(0, 6) AS spend_installs
FROM events
GROUP BY hour, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, revenue_currency;
