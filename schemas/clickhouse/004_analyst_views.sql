-- Analyst views over hourly_stats, by hour and by day, one row per
-- combination of every dimension (app, platform, media source, campaign,
-- ad set, creative, site, sub-site, country). docs/analytics.md is the
-- reference for every column and has ready-to-run queries.
--
-- Rules shared by the views:
--   * Ratios are NULL when their denominator is zero (never inf, nan or an
--     error). Decimal division by zero throws even in the branch if() does
--     not pick, so money ratios divide by if(den = 0, 1, den) inside the
--     if(den = 0, NULL, ...) that returns NULL.
--   * CTR, CVR, ROAS and fraud_share are Float64; CPI and ARPU are money
--     per install, Decimal(38, 6), truncated to 6 decimal places.
--   * Money in different currencies is never added: spend_currency lists the
--     currencies of the row's spend ('' when none, 'EUR,USD' when several);
--     with more than one, spend, CPI and ROAS are NULL (see the
--     spend_by_currency_* views for the split). The same goes for revenue
--     and revenue_currency. ROAS is NULL unless revenue is in the spend
--     currency (or there is no revenue at all).
--   * The inner SELECT sums hourly_stats (whose rows are not necessarily
--     merged yet); the outer one computes the ratios from those sums.

CREATE VIEW IF NOT EXISTS stats_hourly AS
SELECT
    hour,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    impressions, clicks, installs, reinstalls, rejected_installs, install_postbacks,
    installs_click_id, installs_device_id, installs_probabilistic, installs_view_through, installs_organic,
    fraud_installs, fraud_click_injection, fraud_ctit_beyond_window, fraud_click_flooding, fraud_mmp_rejected,
    events,
    if(length(revenue_currencies) > 1, NULL, revenue_sum) AS revenue,
    arrayStringConcat(revenue_currencies, ',') AS revenue_currency,
    if(length(spend_currencies) > 1, NULL, spend_sum) AS spend,
    arrayStringConcat(spend_currencies, ',') AS spend_currency,
    if(impressions = 0, NULL, clicks / impressions) AS ctr,
    if(clicks = 0, NULL, installs / clicks) AS cvr,
    if(installs = 0 OR length(spend_currencies) > 1, NULL,
       spend_sum / if(installs = 0, 1, installs)) AS cpi,
    if(spend_sum = 0 OR length(spend_currencies) > 1 OR length(revenue_currencies) > 1
       OR (length(revenue_currencies) = 1 AND revenue_currencies != spend_currencies), NULL,
       toFloat64(revenue_sum) / toFloat64(spend_sum)) AS roas,
    if(installs = 0 OR length(revenue_currencies) > 1, NULL,
       revenue_sum / if(installs = 0, 1, installs)) AS arpu,
    if(install_postbacks = 0, NULL, fraud_installs / install_postbacks) AS fraud_share
FROM (
    SELECT
        hour,
        app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
        sum(impressions) AS impressions,
        sum(clicks) AS clicks,
        sum(installs) AS installs,
        sum(reinstalls) AS reinstalls,
        sum(rejected_installs) AS rejected_installs,
        sum(install_postbacks) AS install_postbacks,
        sum(installs_click_id) AS installs_click_id,
        sum(installs_device_id) AS installs_device_id,
        sum(installs_probabilistic) AS installs_probabilistic,
        sum(installs_view_through) AS installs_view_through,
        sum(installs_organic) AS installs_organic,
        sum(fraud_installs) AS fraud_installs,
        sum(fraud_click_injection) AS fraud_click_injection,
        sum(fraud_ctit_beyond_window) AS fraud_ctit_beyond_window,
        sum(fraud_click_flooding) AS fraud_click_flooding,
        sum(fraud_mmp_rejected) AS fraud_mmp_rejected,
        sum(events) AS events,
        sum(revenue) AS revenue_sum,
        sum(spend_impressions) + sum(spend_clicks) + sum(spend_installs) AS spend_sum,
        arraySort(groupUniqArrayIf(spend_currency, spend_currency != '')) AS spend_currencies,
        arraySort(groupUniqArrayIf(revenue_currency, revenue_currency != '')) AS revenue_currencies
    FROM hourly_stats
    GROUP BY hour, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country
);

CREATE VIEW IF NOT EXISTS stats_daily AS
SELECT
    day,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    impressions, clicks, installs, reinstalls, rejected_installs, install_postbacks,
    installs_click_id, installs_device_id, installs_probabilistic, installs_view_through, installs_organic,
    fraud_installs, fraud_click_injection, fraud_ctit_beyond_window, fraud_click_flooding, fraud_mmp_rejected,
    events,
    if(length(revenue_currencies) > 1, NULL, revenue_sum) AS revenue,
    arrayStringConcat(revenue_currencies, ',') AS revenue_currency,
    if(length(spend_currencies) > 1, NULL, spend_sum) AS spend,
    arrayStringConcat(spend_currencies, ',') AS spend_currency,
    if(impressions = 0, NULL, clicks / impressions) AS ctr,
    if(clicks = 0, NULL, installs / clicks) AS cvr,
    if(installs = 0 OR length(spend_currencies) > 1, NULL,
       spend_sum / if(installs = 0, 1, installs)) AS cpi,
    if(spend_sum = 0 OR length(spend_currencies) > 1 OR length(revenue_currencies) > 1
       OR (length(revenue_currencies) = 1 AND revenue_currencies != spend_currencies), NULL,
       toFloat64(revenue_sum) / toFloat64(spend_sum)) AS roas,
    if(installs = 0 OR length(revenue_currencies) > 1, NULL,
       revenue_sum / if(installs = 0, 1, installs)) AS arpu,
    if(install_postbacks = 0, NULL, fraud_installs / install_postbacks) AS fraud_share
FROM (
    SELECT
        toDate(hour) AS day,
        app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
        sum(impressions) AS impressions,
        sum(clicks) AS clicks,
        sum(installs) AS installs,
        sum(reinstalls) AS reinstalls,
        sum(rejected_installs) AS rejected_installs,
        sum(install_postbacks) AS install_postbacks,
        sum(installs_click_id) AS installs_click_id,
        sum(installs_device_id) AS installs_device_id,
        sum(installs_probabilistic) AS installs_probabilistic,
        sum(installs_view_through) AS installs_view_through,
        sum(installs_organic) AS installs_organic,
        sum(fraud_installs) AS fraud_installs,
        sum(fraud_click_injection) AS fraud_click_injection,
        sum(fraud_ctit_beyond_window) AS fraud_ctit_beyond_window,
        sum(fraud_click_flooding) AS fraud_click_flooding,
        sum(fraud_mmp_rejected) AS fraud_mmp_rejected,
        sum(events) AS events,
        sum(revenue) AS revenue_sum,
        sum(spend_impressions) + sum(spend_clicks) + sum(spend_installs) AS spend_sum,
        arraySort(groupUniqArrayIf(spend_currency, spend_currency != '')) AS spend_currencies,
        arraySort(groupUniqArrayIf(revenue_currency, revenue_currency != '')) AS revenue_currencies
    FROM hourly_stats
    GROUP BY day, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country
);

-- Spend split by its currency: one row per dimension combination and
-- currency, with the touches and installs that carried that currency, so
-- CPI is computed within one currency. Rows of events only are left out.
CREATE VIEW IF NOT EXISTS spend_by_currency_hourly AS
SELECT
    hour,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    currency,
    impressions, clicks, installs, install_postbacks,
    spend_impressions, spend_clicks, spend_installs,
    spend_impressions + spend_clicks + spend_installs AS spend,
    if(installs = 0, NULL, (spend_impressions + spend_clicks + spend_installs) / if(installs = 0, 1, installs)) AS cpi
FROM (
    SELECT
        hour,
        app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
        spend_currency AS currency,
        sum(impressions) AS impressions,
        sum(clicks) AS clicks,
        sum(installs) AS installs,
        sum(install_postbacks) AS install_postbacks,
        sum(spend_impressions) AS spend_impressions,
        sum(spend_clicks) AS spend_clicks,
        sum(spend_installs) AS spend_installs
    FROM hourly_stats
    GROUP BY hour, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, currency
    HAVING impressions + clicks + install_postbacks > 0
);

CREATE VIEW IF NOT EXISTS spend_by_currency_daily AS
SELECT
    day,
    app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
    currency,
    impressions, clicks, installs, install_postbacks,
    spend_impressions, spend_clicks, spend_installs,
    spend_impressions + spend_clicks + spend_installs AS spend,
    if(installs = 0, NULL, (spend_impressions + spend_clicks + spend_installs) / if(installs = 0, 1, installs)) AS cpi
FROM (
    SELECT
        toDate(hour) AS day,
        app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country,
        spend_currency AS currency,
        sum(impressions) AS impressions,
        sum(clicks) AS clicks,
        sum(installs) AS installs,
        sum(install_postbacks) AS install_postbacks,
        sum(spend_impressions) AS spend_impressions,
        sum(spend_clicks) AS spend_clicks,
        sum(spend_installs) AS spend_installs
    FROM hourly_stats
    GROUP BY day, app_id, platform, media_source, campaign_id, adset_id, creative_id, site_id, sub_site_id, country, currency
    HAVING impressions + clicks + install_postbacks > 0
)
