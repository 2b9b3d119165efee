-- Base tables: one row per record of each topic the sink loads.
--
-- Common subset only (runs on ClickHouse 18.16 and current releases):
-- MergeTree, DateTime('UTC'), Decimal(18, 6), Enum8, Nullable, Array,
-- LowCardinality (18.16 needs allow_experimental_low_cardinality_type = 1,
-- which pkg/chconn sets on every session).
--
-- src_topic / src_partition / src_offset say which Kafka record a row came
-- from: the sink resumes after the highest offset stored here, which is what
-- makes loading exactly-once without replicated-table dedup.

CREATE TABLE IF NOT EXISTS impressions (
    impression_id String,
    time DateTime('UTC'),
    app_id LowCardinality(String),
    platform Enum8('' = 0, 'ios' = 1, 'android' = 2, 'web' = 3),
    media_source LowCardinality(String),
    campaign_id LowCardinality(String),
    adset_id String,
    creative_id String,
    site_id String,
    sub_site_id String,
    country LowCardinality(String),
    idfa String,
    gaid String,
    ip String,
    ua String,
    cost Decimal(18, 6),
    currency LowCardinality(String),
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (app_id, media_source, campaign_id, time);

CREATE TABLE IF NOT EXISTS clicks (
    click_id String,
    time DateTime('UTC'),
    app_id LowCardinality(String),
    platform Enum8('' = 0, 'ios' = 1, 'android' = 2, 'web' = 3),
    media_source LowCardinality(String),
    campaign_id LowCardinality(String),
    adset_id String,
    creative_id String,
    site_id String,
    sub_site_id String,
    country LowCardinality(String),
    idfa String,
    gaid String,
    ip String,
    ua String,
    s2s UInt8,
    cost Decimal(18, 6),
    currency LowCardinality(String),
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (app_id, media_source, campaign_id, time);

-- Attributed installs (installs.attributed.v1).
CREATE TABLE IF NOT EXISTS installs (
    event_id String,
    mmp LowCardinality(String),
    received_at DateTime('UTC'),
    install_time DateTime('UTC'),
    app_id LowCardinality(String),
    platform Enum8('' = 0, 'ios' = 1, 'android' = 2, 'web' = 3),
    click_id String,
    idfa String,
    gaid String,
    idfv String,
    android_id String,
    ip String,
    ua String,
    country LowCardinality(String),
    -- what the MMP reported
    mmp_media_source LowCardinality(String),
    mmp_campaign_id String,
    mmp_campaign_name String,
    mmp_match_type LowCardinality(String),
    is_retargeting UInt8,
    rejected UInt8,
    reject_reason LowCardinality(String),
    -- our attribution
    match_type Enum8('organic' = 0, 'click_id' = 1, 'device_id' = 2, 'probabilistic' = 3, 'view_through' = 4),
    touch_id String,
    touch_time Nullable(DateTime('UTC')),
    ctit_seconds Nullable(Int64),
    media_source LowCardinality(String),
    campaign_id LowCardinality(String),
    adset_id String,
    creative_id String,
    site_id String,
    sub_site_id String,
    cost Decimal(18, 6),
    cost_currency LowCardinality(String),
    fraud_flags Array(String),
    mmp_disagrees UInt8,
    reinstall UInt8,
    attributed_at DateTime('UTC'),
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(install_time)
ORDER BY (app_id, media_source, campaign_id, install_time);

-- Attributed in-app events (events.attributed.v1).
CREATE TABLE IF NOT EXISTS events (
    event_id String,
    mmp LowCardinality(String),
    received_at DateTime('UTC'),
    event_time DateTime('UTC'),
    install_time Nullable(DateTime('UTC')),
    install_event_id String,
    app_id LowCardinality(String),
    platform Enum8('' = 0, 'ios' = 1, 'android' = 2, 'web' = 3),
    click_id String,
    idfa String,
    gaid String,
    idfv String,
    android_id String,
    country LowCardinality(String),
    event_name Enum8('custom' = 0, 'install' = 1, 'app_open' = 2, 'purchase' = 3, 'level_achieved' = 4, 'screen_view' = 5, 'click' = 6, 'form_submit' = 7),
    original_event_name String,
    event_value String,
    revenue Decimal(18, 6),
    currency LowCardinality(String),
    revenue_reporting Decimal(18, 6),
    reporting_currency LowCardinality(String),
    match_type Enum8('organic' = 0, 'click_id' = 1, 'device_id' = 2, 'probabilistic' = 3, 'view_through' = 4),
    touch_id String,
    media_source LowCardinality(String),
    campaign_id LowCardinality(String),
    adset_id String,
    creative_id String,
    site_id String,
    sub_site_id String,
    fraud_flags Array(String),
    attributed_at DateTime('UTC'),
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (app_id, media_source, campaign_id, event_time);

-- Authenticated postbacks that could not be accepted (postbacks.rejected.v1),
-- and rows ClickHouse refused, with the reason.
CREATE TABLE IF NOT EXISTS rejected (
    source LowCardinality(String),
    kind LowCardinality(String),
    received_at DateTime('UTC'),
    field String,
    reason String,
    event_id String,
    raw_method LowCardinality(String),
    raw_path String,
    raw_query String,
    raw_content_type String,
    raw_body String,
    remote_ip String,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, received_at);
