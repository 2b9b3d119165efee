-- Retention by install-day cohort, computed at query time from the base
-- tables: one row per cohort day (UTC), app, media source and campaign.
--
-- The cohort is the new installs (reinstall = 0 and rejected = 0, the same
-- count as hourly_stats.installs). An install is active on day N when at
-- least one in-app event joined to it (events.install_event_id =
-- installs.event_id) has its event_time on cohort_day + N (UTC).
-- retention_dN is active_dN / installs, NULL while day N has not ended yet
-- (cohort_day + N >= today in UTC): an unfinished day is not a zero.
--
-- A view rather than an aggregate table so that the join is exact (by
-- install_event_id, whatever attribution the events carry); it reads the
-- installs and events tables on every query. On 18.16 a WHERE on the view
-- is not pushed into it (enable_optimize_predicate_expression = 0), see
-- docs/analytics.md for the cost and the bounded form of the query.

CREATE VIEW IF NOT EXISTS retention_daily AS
SELECT
    cohort_day,
    app_id, media_source, campaign_id,
    installs,
    active_d1, active_d3, active_d7,
    if(installs = 0 OR cohort_day + 1 >= toDate(now(), 'UTC'), NULL, active_d1 / installs) AS retention_d1,
    if(installs = 0 OR cohort_day + 3 >= toDate(now(), 'UTC'), NULL, active_d3 / installs) AS retention_d3,
    if(installs = 0 OR cohort_day + 7 >= toDate(now(), 'UTC'), NULL, active_d7 / installs) AS retention_d7
FROM (
    SELECT
        toDate(install_time) AS cohort_day,
        app_id, media_source, campaign_id,
        count() AS installs,
        countIf(has(active_days, cohort_day + 1)) AS active_d1,
        countIf(has(active_days, cohort_day + 3)) AS active_d3,
        countIf(has(active_days, cohort_day + 7)) AS active_d7
    FROM installs
    ANY LEFT JOIN (
        SELECT install_event_id AS event_id, groupUniqArray(toDate(event_time)) AS active_days
        FROM events
        WHERE install_event_id != ''
        GROUP BY install_event_id
    ) AS activity USING event_id
    WHERE reinstall = 0 AND rejected = 0
    GROUP BY cohort_day, app_id, media_source, campaign_id
)
