#!/usr/bin/env bash
# Send a little sample traffic through the running pipeline and show where
# it landed: campaigns, impressions, clicks, an install postback (sent twice,
# as an MMP retry would), an in-app event and one malformed postback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ctl="$root/bin/postbackctl"
base=${POSTBACK_DEMO_URL:-http://127.0.0.1:8080}
tok=local-dev-appsflyer-token

"$ctl" campaigns apply "$here/campaigns.yaml"

say() { printf '\n== %s\n' "$*"; }
# Campaigns reach ingest through Kafka; wait until it knows them.
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/impression/demo-cpm-ios?site_id=wait") || code=000
  [[ $code == 204 ]] && break
  sleep 0.25
done

say "impressions (CPM campaign): 204 each"
for i in 1 2 3; do
  curl -s -o /dev/null -w '%{http_code} ' "$base/v1/impression/demo-cpm-ios?site_id=pub$i&creative_id=cr1&idfa=6d92078a-8246-4ba4-ae5b-76104861e7d$i"
done; echo

say "click, browser style: 302 to the MMP tracking link with our click_id"
curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}\n' "$base/v1/click/demo-cpi-ios?site_id=pub1&creative_id=cr1&adset_id=as1&idfa=6d92078a-8246-4ba4-ae5b-76104861e7dc"

say "click, server-to-server: JSON with the click_id"
click=$(curl -s "$base/v1/click/demo-cpi-ios?s2s=1&site_id=pub2&ip=203.0.113.9&ua=Mozilla%2F5.0&idfa=6d92078a-8246-4ba4-ae5b-76104861e7dd")
echo "$click"
click_id=$(sed -E 's/.*"click_id":"([^"]+)".*/\1/' <<<"$click")

now=$(date +%s)
install="$base/v1/postbacks/appsflyer/install?token=$tok&clickid=$click_id&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-76104861e7dd&install_unix_ts=$now&click_ts=$((now-120))&country_code=DE&ip=203.0.113.9&pid=adtrack_int&c=demo&af_c_id=demo-cpi-ios&match_type=srn"
say "install postback (AppsFlyer template), then the same again as a retry: same event_id"
curl -s "$install"; curl -s "$install"

say "in-app event postback (purchase, 4.99 EUR)"
curl -s "$base/v1/postbacks/appsflyer/event?token=$tok&clickid=$click_id&app_id=id1234567890&idfa=6d92078a-8246-4ba4-ae5b-76104861e7dd&event_name=af_purchase&timestamp=$now&orig_monetary=4.99&currency=EUR"

say "malformed postback (currency XXQ): 400 naming the field, kept on the rejected topic"
curl -s "$base/v1/postbacks/appsflyer/event?token=$tok&app_id=id1234567890&event_name=af_purchase&timestamp=$now&orig_monetary=4.99&currency=XXQ" || true

say "unauthenticated: 401, written nowhere"
curl -s "$base/v1/postbacks/appsflyer/install?token=wrong&app_id=x" || true

# The sink loads within its flush interval (1 s); give it a moment.
for _ in $(seq 1 40); do
  n=$(clickhouse-client -d postback -q "SELECT count() FROM clicks" 2>/dev/null || echo 0)
  [[ $n -gt 0 ]] && break
  sleep 0.25
done
say "where it landed"
"$ctl" status

say "a first query (docs/analytics.md): CTR by campaign and creative, last hour"
clickhouse-client -d postback --allow_experimental_low_cardinality_type=1 -q "
  SELECT campaign_id, creative_id, sum(impressions) AS impressions, sum(clicks) AS clicks,
         if(impressions = 0, NULL, clicks / impressions) AS ctr
  FROM stats_hourly WHERE hour >= toStartOfHour(now() - 3600)
  GROUP BY campaign_id, creative_id ORDER BY campaign_id, creative_id FORMAT PrettyCompact"
