-- Apple's signed attribution postbacks (skan.v1): SKAdNetwork 1.0-4.0 and
-- AdAttributionKit, verified by ingest, one row per Kafka record. The sink
-- loads each record exactly once (src_topic/src_partition/src_offset and
-- sink_progress, as for every table); a device or relay that resends a
-- postback produces another record with the same postback_id
-- (transaction-id / postback-sequence-index), so the analyst views read
-- skan_postbacks_unique, which counts each postback_id once.
-- docs/analytics.md documents every column and view.

CREATE TABLE IF NOT EXISTS skan_postbacks (
    postback_id String,
    framework Enum8('skadnetwork' = 1, 'adattributionkit' = 2),
    version LowCardinality(String),
    received_at DateTime('UTC'),
    ad_network_id LowCardinality(String),
    skan_campaign_id Nullable(UInt64),
    source_identifier String,
    app_id LowCardinality(String),
    transaction_id String,
    redownload UInt8,
    source_app_id Nullable(UInt64),
    source_domain String,
    fidelity_type Nullable(UInt8),
    conversion_value Nullable(UInt8),
    coarse_conversion_value Enum8('' = 0, 'low' = 1, 'medium' = 2, 'high' = 3),
    did_win UInt8,
    postback_sequence_index UInt8,
    country_code LowCardinality(String),
    conversion_type LowCardinality(String),
    impression_type LowCardinality(String),
    marketplace_id LowCardinality(String),
    ad_interaction_type LowCardinality(String),
    key_id LowCardinality(String),
    signature String,
    campaign_id LowCardinality(String),
    media_source LowCardinality(String),
    campaign_match Enum8('none' = 0, 'exact' = 1, 'partial' = 2, 'ambiguous' = 3),
    raw_body String,
    remote_ip String,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (app_id, campaign_id, received_at);

CREATE MATERIALIZED VIEW IF NOT EXISTS sink_progress_skan_postbacks TO sink_progress AS
SELECT 'skan_postbacks' AS table_name, src_topic, src_partition, maxState(src_offset) AS max_offset
FROM skan_postbacks
GROUP BY src_topic, src_partition;

-- One row per postback_id: resends folded, deliveries counts them. Every
-- delivery of one postback carries the same fields, so argMin by arrival
-- only picks the first arrival's copy.
CREATE VIEW IF NOT EXISTS skan_postbacks_unique AS
SELECT
    postback_id,
    min(arrived) AS received_at,
    count() AS deliveries,
    argMin(framework, arrived) AS framework,
    argMin(version, arrived) AS version,
    argMin(app_id, arrived) AS app_id,
    argMin(ad_network_id, arrived) AS ad_network_id,
    argMin(campaign_id, arrived) AS campaign_id,
    argMin(media_source, arrived) AS media_source,
    argMin(campaign_match, arrived) AS campaign_match,
    argMin(skan_campaign_id, arrived) AS skan_campaign_id,
    argMin(source_identifier, arrived) AS source_identifier,
    argMin(transaction_id, arrived) AS transaction_id,
    argMin(redownload, arrived) AS redownload,
    argMin(source_app_id, arrived) AS source_app_id,
    argMin(source_domain, arrived) AS source_domain,
    argMin(fidelity_type, arrived) AS fidelity_type,
    argMin(conversion_value, arrived) AS conversion_value,
    argMin(coarse_conversion_value, arrived) AS coarse_conversion_value,
    argMin(did_win, arrived) AS did_win,
    argMin(postback_sequence_index, arrived) AS postback_sequence_index,
    argMin(country_code, arrived) AS country_code,
    argMin(conversion_type, arrived) AS conversion_type
FROM (SELECT *, received_at AS arrived FROM skan_postbacks)
GROUP BY postback_id;

-- Postbacks per day of arrival, app, ad network and campaign: winning
-- first-window postbacks split into installs, redownloads and
-- re-engagements, non-winning ones, and the later windows' postbacks.
CREATE VIEW IF NOT EXISTS skan_installs_daily AS
SELECT
    toDate(received_at) AS day,
    app_id, ad_network_id, campaign_id, media_source,
    countIf(did_win = 1 AND postback_sequence_index = 0 AND redownload = 0 AND conversion_type != 're-engagement') AS installs,
    countIf(did_win = 1 AND postback_sequence_index = 0 AND redownload = 1) AS redownloads,
    countIf(did_win = 1 AND postback_sequence_index = 0 AND conversion_type = 're-engagement') AS reengagements,
    countIf(did_win = 1 AND postback_sequence_index = 0) AS winning,
    countIf(did_win = 0) AS non_winning,
    countIf(postback_sequence_index > 0) AS later_postbacks,
    count() AS postbacks,
    toUInt64(sum(deliveries) - count()) AS resends
FROM skan_postbacks_unique
GROUP BY day, app_id, ad_network_id, campaign_id, media_source;

-- The distribution of conversion values of winning postbacks, per
-- conversion window (postback_sequence_index 0, 1, 2): fine values 0-63,
-- coarse low/medium/high, or none (below the privacy threshold).
CREATE VIEW IF NOT EXISTS skan_conversion_values AS
SELECT
    toDate(received_at) AS day,
    app_id, campaign_id, postback_sequence_index,
    multiIf(isNotNull(conversion_value), 'fine', coarse_conversion_value != '', 'coarse', 'none') AS value_kind,
    multiIf(isNotNull(conversion_value), toString(assumeNotNull(conversion_value)),
            coarse_conversion_value != '', toString(coarse_conversion_value), '') AS value,
    count() AS postbacks
FROM skan_postbacks_unique
WHERE did_win = 1
GROUP BY day, app_id, campaign_id, postback_sequence_index, value_kind, value;

-- SKAN-side CPI beside the MMP-side one, per day, app and campaign: the
-- same spend (hourly_stats: impressions, clicks, installs) divided by the
-- MMP-attributed installs and by the SKAN installs (winning, first window,
-- not redownloads or re-engagements) of that day. Money in several
-- currencies is never added: spend and both CPIs are NULL then. SKAN days
-- are days of arrival: Apple delays postbacks by 24 to 48 hours or more.
CREATE VIEW IF NOT EXISTS skan_cpi_daily AS
SELECT
    day, app_id, campaign_id,
    mmp_installs, skan_installs,
    if(length(spend_currencies) > 1, NULL, spend_sum) AS spend,
    arrayStringConcat(spend_currencies, ',') AS spend_currency,
    if(mmp_installs = 0 OR length(spend_currencies) > 1, NULL, spend_sum / if(mmp_installs = 0, 1, mmp_installs)) AS mmp_cpi,
    if(skan_installs = 0 OR length(spend_currencies) > 1, NULL, spend_sum / if(skan_installs = 0, 1, skan_installs)) AS skan_cpi
FROM (
    SELECT
        day, app_id, campaign_id,
        sum(mmp) AS mmp_installs,
        sum(skan) AS skan_installs,
        sum(spend) AS spend_sum,
        arraySort(groupUniqArrayIf(currency, currency != '')) AS spend_currencies
    FROM (
        SELECT toDate(hour) AS day, CAST(app_id AS String) AS app_id, CAST(campaign_id AS String) AS campaign_id,
               toUInt64(installs) AS mmp, toUInt64(0) AS skan,
               spend_impressions + spend_clicks + spend_installs AS spend, CAST(spend_currency AS String) AS currency
        FROM hourly_stats
        UNION ALL
        SELECT toDate(received_at) AS day, CAST(app_id AS String) AS app_id, CAST(campaign_id AS String) AS campaign_id,
               toUInt64(0) AS mmp,
               toUInt64(did_win = 1 AND postback_sequence_index = 0 AND redownload = 0 AND conversion_type != 're-engagement') AS skan,
               toDecimal128(0, 6) AS spend, '' AS currency
        FROM skan_postbacks_unique
        WHERE campaign_id != ''
    )
    GROUP BY day, app_id, campaign_id
);
