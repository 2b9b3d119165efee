#!/usr/bin/env bash
# Send a little sample traffic through the running pipeline and show where
# it landed: campaigns, impressions, clicks, an install postback (sent twice,
# as an MMP retry would), an in-app event, one malformed postback, and Apple's
# example SKAdNetwork postback (sent twice, and once forged).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ctl="$root/bin/postbackctl"
base=${POSTBACK_DEMO_URL:-http://127.0.0.1:8080}
tok=local-dev-appsflyer-token

"$ctl" campaigns apply "$here/campaigns.yaml"

say() { printf '\n== %s\n' "$*"; }
# Fresh device ids per run: a second run would otherwise show reinstalls.
run=$(printf '%08x' "$(date +%s)")
# Campaigns reach ingest through Kafka; wait until it knows them.
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/impression/demo-cpm-ios?site_id=wait") || code=000
  [[ $code == 204 ]] && break
  sleep 0.25
done

say "impressions (CPM campaign): 204 each"
for i in 1 2 3; do
  curl -s -o /dev/null -w '%{http_code} ' "$base/v1/impression/demo-cpm-ios?site_id=pub$i&creative_id=cr1&idfa=6d92078a-8246-4ba4-ae5b-${run}00d$i"
done; echo

say "click, browser style: 302 to the MMP tracking link with our click_id"
curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}\n' "$base/v1/click/demo-cpi-ios?site_id=pub1&creative_id=cr1&adset_id=as1&idfa=6d92078a-8246-4ba4-ae5b-${run}00dc"

say "click, server-to-server: JSON with the click_id"
click=$(curl -s "$base/v1/click/demo-cpi-ios?s2s=1&site_id=pub2&ip=203.0.113.9&ua=Mozilla%2F5.0&idfa=6d92078a-8246-4ba4-ae5b-${run}00dd")
echo "$click"
click_id=$(sed -E 's/.*"click_id":"([^"]+)".*/\1/' <<<"$click")

now=$(date +%s)
# The MMP reports the app's first open 30 s after the click (a CTIT under
# 10 s would be flagged click_injection).
inst=$((now + 30))
install="$base/v1/postbacks/appsflyer/install?token=$tok&clickid=$click_id&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-${run}00dd&install_unix_ts=$inst&click_ts=$((now-120))&country_code=DE&ip=203.0.113.9&pid=adtrack_int&c=demo&af_c_id=demo-cpi-ios&match_type=srn"
say "install postback (AppsFlyer template), then the same again as a retry: same event_id"
curl -s "$install"; curl -s "$install"

say "in-app event postback (purchase, 4.99 EUR)"
curl -s "$base/v1/postbacks/appsflyer/event?token=$tok&clickid=$click_id&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-${run}00dd&event_name=af_purchase&timestamp=$now&orig_monetary=4.99&currency=EUR"

say "install by device id only (no click id; the browser click above had this IDFA)"
curl -s "$base/v1/postbacks/appsflyer/install?token=$tok&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-${run}00dc&install_unix_ts=$inst&country_code=FR"

say "install by a device that only saw an impression: view-through"
curl -s "$base/v1/postbacks/appsflyer/install?token=$tok&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-${run}00d2&install_unix_ts=$inst&country_code=US"

say "install nobody can be credited for: organic"
curl -s "$base/v1/postbacks/appsflyer/install?token=$tok&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-${run}00ff&install_unix_ts=$inst&country_code=US"

say "malformed postback (currency XXQ): 400 naming the field, kept on the rejected topic"
curl -s "$base/v1/postbacks/appsflyer/event?token=$tok&app_id=id1234567890&event_name=af_purchase&timestamp=$now&orig_monetary=4.99&currency=XXQ" || true

say "unauthenticated: 401, written nowhere"
curl -s "$base/v1/postbacks/appsflyer/install?token=wrong&app_id=x" || true

say "Apple's SKAdNetwork 4.0 example postback (verifies with Apple's key), then a resend: same postback_id"
apple="$root/pkg/skan/testdata/apple/skan-4.0-web-high.json"
curl -s -X POST -H 'Content-Type: application/json' --data-binary "@$apple" "$base/v1/skan"
curl -s -X POST -H 'Content-Type: application/json' --data-binary "@$apple" "$base/v1/skan"

say "the same postback with its source-identifier changed: 401 invalid_signature, kept on the rejected topic"
sed 's/"5239"/"5238"/' "$apple" | curl -s -X POST -H 'Content-Type: application/json' --data-binary @- "$base/v1/skan" || true

# The sink loads within its flush interval (1 s); give it a moment.
for _ in $(seq 1 40); do
  n=$(clickhouse-client -d postback -q "SELECT count() FROM clicks" 2>/dev/null || echo 0)
  [[ $n -gt 0 ]] && break
  sleep 0.25
done
# Installs go through the attribution service's three stages first.
if [[ -x "$root/bin/attribution" ]]; then
  for _ in $(seq 1 80); do
    n=$(clickhouse-client -d postback -q "SELECT count() FROM installs WHERE idfa LIKE '%${run}%' " 2>/dev/null || echo 0)
    e=$(clickhouse-client -d postback -q "SELECT count() FROM events WHERE idfa LIKE '%${run}%'" 2>/dev/null || echo 0)
    [[ $n -ge 4 && $e -ge 1 ]] && break
    sleep 0.25
  done
fi
say "where it landed"
"$ctl" status

say "a first query (docs/analytics.md): CTR by campaign and creative, last hour"
clickhouse-client -d postback --allow_experimental_low_cardinality_type=1 -q "
  SELECT campaign_id, creative_id, sum(impressions) AS impressions, sum(clicks) AS clicks,
         if(impressions = 0, NULL, clicks / impressions) AS ctr
  FROM stats_hourly WHERE hour >= toStartOfHour(now() - 3600)
  GROUP BY campaign_id, creative_id ORDER BY campaign_id, creative_id FORMAT PrettyCompact"

say "attributed installs (services/attribution, docs/attribution.md): the retry was dropped"
clickhouse-client -d postback --allow_experimental_low_cardinality_type=1 -q "
  SELECT idfa, match_type, ctit_seconds, campaign_id, media_source, cost, cost_currency, fraud_flags, reinstall
  FROM installs WHERE idfa LIKE '%${run}%' ORDER BY idfa FORMAT PrettyCompact"

say "the purchase, joined to its install, revenue in EUR and in the reporting currency"
clickhouse-client -d postback --allow_experimental_low_cardinality_type=1 -q "
  SELECT event_name, match_type, campaign_id, revenue, currency, revenue_reporting, reporting_currency
  FROM events WHERE idfa LIKE '%${run}%' FORMAT PrettyCompact"
