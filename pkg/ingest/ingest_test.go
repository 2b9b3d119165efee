package ingest

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
)

const (
	genericToken = "generic-token-0123456789"
	appToken     = "app-only-token-0123456789"
	benchToken   = "appsflyer-token-0123456789"
	idfa         = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
)

type harness struct {
	t       testing.TB
	cfg     Config
	srv     *Server
	tel     *telemetry.Telemetry
	reg     *campaign.Registry
	http    *httptest.Server
	brokers []string
	client  *http.Client
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCampaigns() []event.Campaign {
	camps, err := campaign.ParseYAML([]byte(`
campaigns:
  - {campaign_id: cpi, app_id: id123456789, platform: ios, media_source: net_int, cost_model: CPI, bid: "1.5", currency: USD,
     tracking_link: "https://app.appsflyer.com/id123456789?pid=net_int&clickid={click_id}&af_siteid={site_id}&idfa={idfa}&af_sub1={sub1}&x={unknown}"}
  - {campaign_id: cpc, app_id: com.example.game, media_source: net_int, cost_model: CPC, bid: "0.25", currency: EUR}
  - {campaign_id: cpm, app_id: com.example.game, media_source: net_int, cost_model: CPM, bid: "4", currency: USD}
`))
	if err != nil {
		panic(err)
	}
	return camps
}

// newHarness starts ingest over kfake with the test campaigns loaded;
// mutate adjusts the config first.
func newHarness(t testing.TB, mutate func(*Config)) *harness {
	t.Helper()
	return startHarness(t, mutate, false)
}

// startHarness is newHarness; unloaded leaves the registry holding the
// campaigns but not marked loaded, as while the follower reads the topic.
func startHarness(t testing.TB, mutate func(*Config), unloaded bool) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Topics.Partitions = 3
	cfg.Ingest.Sources = map[string]Source{
		"generic":   {Tokens: []string{genericToken}},
		"adjust":    {AppTokens: map[string][]string{"com.example.game": {appToken}}},
		"appsflyer": {Tokens: []string{benchToken}},
	}
	cfg.Ingest.Produce.Timeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	t0 := cfg.Topics
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, t0.Clicks, t0.Impressions, t0.InstallsRaw, t0.EventsRaw, t0.Rejected, t0.SKAN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(ProducerOpts(kafkaconn.Plain(c.ListenAddrs()), cfg.Ingest.Produce)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	reg := campaign.NewRegistry()
	for _, c := range testCampaigns() {
		reg.Put(c)
	}
	if !unloaded {
		reg.SetLoaded()
	}
	tel := telemetry.New()
	srv, err := New(cfg, cl, reg, tel, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &harness{t: t, cfg: cfg, srv: srv, tel: tel, reg: reg, http: hs, brokers: c.ListenAddrs(),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	code   int
	header http.Header
	body   string
	json   map[string]any
}

func (h *harness) do(method, path, contentType, body string, header map[string]string) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.json); err != nil {
			h.t.Fatalf("answer is not JSON: %s", b)
		}
	}
	return a
}

func (h *harness) get(path string) answer { return h.do("GET", path, "", "", nil) }

// records reads every record on topic, up to the end offsets listed when
// it is called (a quiet period alone was flaky under a loaded machine).
func (h *harness) records(topic string) []*kgo.Record {
	h.t.Helper()
	return testenv.ReadAll(h.t, h.brokers, topic)
}

func installQuery(extra string) string {
	q := "/v1/postbacks/generic/install?token=" + genericToken + "&app_id=id123456789&click_id=k-1&idfa=" + idfa +
		"&install_time=1795853553&country=de&ip=203.0.113.7"
	return q + extra
}

func TestPostbackAccepted(t *testing.T) {
	h := newHarness(t, nil)
	a := h.get(installQuery(""))
	if a.code != 200 || a.json["status"] != "accepted" || a.json["event_id"] == "" {
		t.Fatalf("answer %d %s", a.code, a.body)
	}
	// The MMP retries: same answer, same event id.
	b := h.get(installQuery(""))
	if b.code != 200 || b.json["event_id"] != a.json["event_id"] {
		t.Fatalf("retry answered %d %s, first %s", b.code, b.body, a.body)
	}
	recs := h.records(h.cfg.Topics.InstallsRaw)
	if len(recs) != 2 {
		t.Fatalf("%d records on installs.raw, want 2 (both acknowledged)", len(recs))
	}
	var in event.Install
	if err := json.Unmarshal(recs[0].Value, &in); err != nil {
		t.Fatal(err)
	}
	if string(recs[0].Key) != "k-1" {
		t.Errorf("key = %q, want the click id", recs[0].Key)
	}
	if in.EventID != a.json["event_id"] || in.AppID != "id123456789" || in.IDFA != idfa || in.Country != "DE" ||
		in.Platform != event.PlatformIOS || in.InstallTime.Unix() != 1795853553 || in.MMP != "generic" {
		t.Errorf("install fields: %+v", in)
	}
	if strings.Contains(in.Raw.Query, genericToken) || strings.Contains(string(recs[0].Value), genericToken) {
		t.Errorf("token leaked into the record: %s", recs[0].Value)
	}
	if !strings.Contains(in.Raw.Query, "click_id=k-1") || in.Raw.Method != "GET" || in.Raw.Path != "/v1/postbacks/generic/install" {
		t.Errorf("raw request not kept: %+v", in.Raw)
	}
	if n := len(h.records(h.cfg.Topics.EventsRaw)); n != 0 {
		t.Errorf("%d records on events.raw, want 0", n)
	}
}

func TestPostbackBodiesAndHeaderToken(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"app_id":"com.example.game","gaid":"38400000-8CF0-11BD-B23E-10B96E40000D","event_time":1795853553,
		"event_name":"af_purchase","revenue":"4.99","currency":"eur","event_value":"{\"sku\":\"x\"}"}`
	a := h.do("POST", "/v1/postbacks/generic/event", "application/json", body, map[string]string{"X-Postback-Token": genericToken})
	if a.code != 200 {
		t.Fatalf("JSON body: %d %s", a.code, a.body)
	}
	form := url.Values{"app_id": {"com.example.game"}, "event_time": {"1795853553"}, "event_name": {"level"}, "token": {"ignored-in-body"}}
	b := h.do("POST", "/v1/postbacks/generic/event?token="+genericToken, "application/x-www-form-urlencoded", form.Encode(), nil)
	if b.code != 200 {
		t.Fatalf("form body: %d %s", b.code, b.body)
	}
	recs := h.records(h.cfg.Topics.EventsRaw)
	if len(recs) != 2 {
		t.Fatalf("%d events, want 2", len(recs))
	}
	for _, r := range recs {
		if strings.Contains(string(r.Value), "ignored-in-body") {
			t.Errorf("a token posted in a form body was stored: %s", r.Value)
		}
	}
	var ev event.InAppEvent
	var key string
	for _, r := range recs {
		var e event.InAppEvent
		_ = json.Unmarshal(r.Value, &e)
		if e.OriginalName == "af_purchase" {
			ev, key = e, string(r.Key)
		}
	}
	if ev.Name != event.NamePurchase || ev.Revenue.String() != "4.99" || ev.Currency != "EUR" ||
		ev.GAID != "38400000-8cf0-11bd-b23e-10b96e40000d" || ev.Platform != event.PlatformAndroid {
		t.Errorf("event fields: %+v", ev)
	}
	if key != ev.GAID {
		t.Errorf("key = %q, want the GAID (no click id)", key)
	}
}

func TestAuthAndLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Ingest.Sources["branch"] = Source{Tokens: []string{"branch-token-0123456789"}, AllowCIDRs: []string{"45.92.116.0/22"}}
		c.Ingest.Sources["kochava"] = Source{Tokens: []string{"kochava-token-012345678"}, RateLimit: 0.001, Burst: 1}
		c.HTTP.MaxBodyBytes = 1024
		c.HTTP.MaxURLBytes = 512
	})
	tests := []struct {
		name, method, path, body string
		code                     int
		field                    string
	}{
		{"unknown mmp", "GET", "/v1/postbacks/nope/install?token=x", "", 404, "mmp"},
		{"unknown kind", "GET", "/v1/postbacks/generic/uninstall?token=x", "", 404, "kind"},
		{"source not enabled", "GET", "/v1/postbacks/tenjin/install?token=x", "", 401, "token"},
		{"missing token", "GET", "/v1/postbacks/generic/install?app_id=a", "", 401, "token"},
		{"wrong token", "GET", "/v1/postbacks/generic/install?token=generic-token-0123456780", "", 401, "token"},
		{"token of another source", "GET", "/v1/postbacks/generic/install?token=branch-token-0123456789", "", 401, "token"},
		{"ip not allowed", "GET", "/v1/postbacks/branch/install?token=branch-token-0123456789", "", 403, ""},
		{"app token, wrong app", "GET", "/v1/postbacks/adjust/install?token=" + appToken + "&app_id=com.other.app&installed_at=1795853553", "", 401, "token"},
		{"body too large", "POST", "/v1/postbacks/generic/install?token=" + genericToken, `{"a":"` + strings.Repeat("x", 2000) + `"}`, 413, "body"},
		{"unsupported body type", "POST", "/v1/postbacks/generic/install?token=" + genericToken, "<xml/>", 415, "body"},
		{"url too long", "GET", "/v1/postbacks/generic/install?token=" + genericToken + "&x=" + strings.Repeat("y", 600), "", 414, "url"},
		{"no route", "GET", "/v2/whatever", "", 404, "path"},
	}
	for _, tt := range tests {
		ct := ""
		if tt.body != "" {
			ct = "application/json"
		}
		if strings.HasPrefix(tt.body, "<") {
			ct = "text/xml"
		}
		a := h.do(tt.method, tt.path, ct, tt.body, nil)
		if a.code != tt.code {
			t.Errorf("%s: code %d (%s), want %d", tt.name, a.code, a.body, tt.code)
			continue
		}
		if a.json["error"] == "" || a.json["error"] == nil {
			t.Errorf("%s: no JSON error: %s", tt.name, a.body)
		}
		if tt.field != "" && a.json["field"] != tt.field {
			t.Errorf("%s: field %v, want %q", tt.name, a.json["field"], tt.field)
		}
	}
	// Rate limit: burst 1, then 429 with Retry-After.
	k := "/v1/postbacks/kochava/install?token=kochava-token-012345678&app_id=com.example.game&install_time=1795853553"
	if a := h.get(k); a.code == 429 {
		t.Fatalf("first request limited: %s", a.body)
	}
	if a := h.get(k); a.code != 429 || a.header.Get("Retry-After") != "5" {
		t.Fatalf("second request: %d Retry-After=%q, want 429 with Retry-After 5", a.code, a.header.Get("Retry-After"))
	}
	// Nothing unauthenticated was written anywhere.
	for _, topic := range []string{h.cfg.Topics.InstallsRaw, h.cfg.Topics.Rejected} {
		for _, r := range h.records(topic) {
			if !strings.Contains(string(r.Value), "kochava") {
				t.Errorf("unexpected record on %s: %s", topic, r.Value)
			}
		}
	}
}

func TestAppTokenAcceptedForItsApp(t *testing.T) {
	h := newHarness(t, nil)
	a := h.get("/v1/postbacks/adjust/install?token=" + appToken + "&app_id=com.example.game&installed_at=1795853553&gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d")
	if a.code != 200 {
		t.Fatalf("app token for its own app: %d %s", a.code, a.body)
	}
}

func TestMalformedIsRejectedAndKept(t *testing.T) {
	h := newHarness(t, nil)
	a := h.get("/v1/postbacks/generic/event?token=" + genericToken + "&app_id=a.b&event_name=buy&event_time=1795853553&revenue=4.99&currency=XXQ")
	if a.code != 400 || a.json["field"] != "currency" || !strings.Contains(a.body, "XXQ") {
		t.Fatalf("answer %d %s, want 400 naming currency", a.code, a.body)
	}
	b := h.do("POST", "/v1/postbacks/generic/install?token="+genericToken, "application/json", `{"app_id": "x",`, nil)
	if b.code != 400 || b.json["field"] != "body" {
		t.Fatalf("broken JSON: %d %s", b.code, b.body)
	}
	recs := h.records(h.cfg.Topics.Rejected)
	if len(recs) != 2 {
		t.Fatalf("%d rejected records, want 2", len(recs))
	}
	var rej event.Rejected
	_ = json.Unmarshal(recs[0].Value, &rej)
	if rej.Source != "generic" || rej.Kind != "event" || rej.Field != "currency" || rej.Reason == "" ||
		!strings.Contains(rej.Raw.Query, "currency=XXQ") || strings.Contains(string(recs[0].Value), genericToken) {
		t.Errorf("rejected record: %s", recs[0].Value)
	}
	if string(recs[0].Key) != "generic" {
		t.Errorf("rejected key %q, want the source", recs[0].Key)
	}
	if n := len(h.records(h.cfg.Topics.EventsRaw)); n != 0 {
		t.Errorf("malformed postback reached events.raw")
	}
}

func TestClickRedirectAndS2S(t *testing.T) {
	h := newHarness(t, nil)
	a := h.get("/v1/click/cpi?site_id=pub%201&creative_id=cr1&sub1=p%26q&sub5=z&idfa=" + strings.ToUpper(idfa))
	if a.code != 302 {
		t.Fatalf("click: %d %s", a.code, a.body)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil || loc.Host != "app.appsflyer.com" {
		t.Fatalf("Location = %q", a.header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("af_siteid") != "pub 1" || q.Get("af_sub1") != "p&q" || q.Get("idfa") != idfa || q.Get("clickid") == "" || q.Get("x") != "{unknown}" {
		t.Errorf("our macros not filled, or a placeholder that is not ours not left alone: %s", loc)
	}
	b := h.get("/v1/click/cpc?s2s=1&ip=198.51.100.4&ua=UA%2F1&gaid=38400000-8cf0-11bd-b23e-10b96e40000d")
	if b.code != 200 || b.json["click_id"] == nil {
		t.Fatalf("s2s click: %d %s", b.code, b.body)
	}
	recs := h.records(h.cfg.Topics.Clicks)
	if len(recs) != 2 {
		t.Fatalf("%d clicks, want 2", len(recs))
	}
	byID := map[string]event.Click{}
	for _, r := range recs {
		var c event.Click
		_ = json.Unmarshal(r.Value, &c)
		if string(r.Key) != c.ClickID {
			t.Errorf("click key %q != click_id %q", r.Key, c.ClickID)
		}
		byID[c.ClickID] = c
	}
	redirected := byID[q.Get("clickid")]
	if redirected.CampaignID != "cpi" || redirected.SiteID != "pub 1" || redirected.Cost != 0 || redirected.IP != "127.0.0.1" ||
		redirected.PublisherSubs != (event.PublisherSubs{Sub1: "p&q", Sub5: "z"}) {
		t.Errorf("redirected click: %+v", redirected)
	}
	s2s := byID[b.json["click_id"].(string)]
	if !s2s.S2S || s2s.IP != "198.51.100.4" || s2s.UA != "UA/1" || s2s.Cost.String() != "0.25" || s2s.Currency != "EUR" || s2s.Platform != event.PlatformAndroid {
		t.Errorf("s2s click: %+v", s2s)
	}
	if c := h.get("/v1/click/nope"); c.code != 404 || c.json["field"] != "campaign_id" {
		t.Errorf("unknown campaign: %d %s", c.code, c.body)
	}
	if c := h.get("/v1/click/cpi?idfa=not-a-uuid"); c.code != 400 || c.json["field"] != "idfa" {
		t.Errorf("bad idfa: %d %s", c.code, c.body)
	}
	if c := h.get("/v1/click/cpc?s2s=1"); c.code != 400 || c.json["field"] != "ip" {
		t.Errorf("s2s without ip: %d %s", c.code, c.body)
	}
}

func TestImpression(t *testing.T) {
	h := newHarness(t, nil)
	if a := h.get("/v1/impression/cpm?site_id=s"); a.code != 204 {
		t.Fatalf("impression: %d %s", a.code, a.body)
	}
	a := h.get("/v1/impression/cpm?pixel=1")
	if a.code != 200 || a.header.Get("Content-Type") != "image/gif" || !strings.HasPrefix(a.body, "GIF89a") {
		t.Fatalf("pixel: %d %q", a.code, a.header.Get("Content-Type"))
	}
	recs := h.records(h.cfg.Topics.Impressions)
	if len(recs) != 2 {
		t.Fatalf("%d impressions, want 2", len(recs))
	}
	var imp event.Impression
	_ = json.Unmarshal(recs[0].Value, &imp)
	if imp.Cost.String() != "0.004" || imp.CampaignID != "cpm" || imp.ImpressionID != string(recs[0].Key) {
		t.Errorf("impression: %+v", imp)
	}
}

// TestKafkaDownIs503 proves "never 2xx-and-drop": with no reachable broker
// every endpoint answers 503 with Retry-After within the produce timeout.
func TestKafkaDownIs503(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Ingest.Sources = map[string]Source{"generic": {Tokens: []string{genericToken}}}
	cfg.Ingest.Produce.Timeout = 300 * time.Millisecond
	cl, err := kgo.NewClient(ProducerOpts(kafkaconn.Plain([]string{"127.0.0.1:1"}), cfg.Ingest.Produce)...) // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reg := campaign.NewRegistry()
	for _, c := range testCampaigns() {
		reg.Put(c)
	}
	reg.SetLoaded()
	tel := telemetry.New()
	srv, err := New(cfg, cl, reg, tel, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	h := &harness{t: t, cfg: cfg, srv: srv, http: hs, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, p := range []string{installQuery(""), "/v1/click/cpi", "/v1/impression/cpm",
		"/v1/postbacks/generic/event?token=" + genericToken + "&app_id=a.b&event_name=x&event_time=1795853553&currency=XXQ&revenue=1"} {
		a := h.get(p)
		if a.code != 503 || a.header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s, want 503 with Retry-After", p, a.code, a.body)
		}
	}
	if a := h.get("/readyz"); a.code != 503 || !strings.Contains(a.body, "kafka") {
		t.Errorf("/readyz with Kafka down: %d %s", a.code, a.body)
	}
	for route, n := range map[string]float64{"postback": 2, "click": 1, "impression": 1} {
		if got := metricSum(t, tel.Registry, "ingest_requests_total", map[string]string{"route": route, "code": "503"}); got != n {
			t.Errorf("ingest_requests_total{route=%s,code=503} = %v, want %v", route, got, n)
		}
	}
	if got := metricSum(t, tel.Registry, "ingest_produce_failures_total", nil); got != 4 {
		t.Errorf("ingest_produce_failures_total = %v, want 4", got)
	}
}

// TestConcurrentAccepted checks, under -race, that concurrent postbacks are
// each acknowledged and each written.
func TestConcurrentAccepted(t *testing.T) {
	h := newHarness(t, nil)
	var wg sync.WaitGroup
	ids := make([]string, 64)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := h.get(installQuery("&event_id=e" + strings.Repeat("x", i)))
			if a.code == 200 {
				ids[i], _ = a.json["event_id"].(string)
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range h.records(h.cfg.Topics.InstallsRaw) {
		var in event.Install
		_ = json.Unmarshal(r.Value, &in)
		seen[in.EventID] = true
	}
	for i, id := range ids {
		if id == "" || !seen[id] {
			t.Errorf("request %d: event id %q acknowledged=%v written=%v", i, id, id != "", seen[id])
		}
	}
}

func TestWithoutParam(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=1&token=s&b=2", "a=1&b=2"},
		{"token=s", ""},
		{"token=s&token=t&z=%20", "z=%20"},
		{"tok%65n=s&x=1", "x=1"}, // escaped name is still the token
		{"tokens=1&mytoken=2", "tokens=1&mytoken=2"},
		{"b=2&a=1", "b=2&a=1"}, // order kept
		{"", ""},
	}
	for _, tt := range tests {
		if got := withoutParam(tt.in, "token"); got != tt.want {
			t.Errorf("withoutParam(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTouchesWhileCampaignsLoad: between "listening" and "campaigns loaded"
// a click or impression, of an existing campaign or not, gets 503 with
// Retry-After, never 404, and /readyz fails naming campaigns; postbacks,
// which need no campaign, are taken. Once loaded: 200, and 404 for a
// campaign that really is unknown.
func TestTouchesWhileCampaignsLoad(t *testing.T) {
	h := startHarness(t, nil, true)
	for _, p := range []string{"/v1/click/cpc?s2s=1&ip=198.51.100.4", "/v1/click/cpi", "/v1/click/nope",
		"/v1/impression/cpm", "/v1/impression/nope?pixel=1"} {
		a := h.get(p)
		if a.code != 503 || a.header.Get("Retry-After") != "1" {
			t.Errorf("%s while loading: %d Retry-After=%q %s, want 503 with Retry-After 1", p, a.code, a.header.Get("Retry-After"), a.body)
		}
	}
	if a := h.get("/readyz"); a.code != 503 || !strings.Contains(a.body, "campaigns") {
		t.Errorf("/readyz while loading: %d %s, want 503 naming campaigns", a.code, a.body)
	}
	if a := h.get(installQuery("")); a.code != 200 {
		t.Errorf("postback while campaigns load: %d %s", a.code, a.body)
	}
	if got := metricSum(t, h.tel.Registry, "ingest_requests_total", map[string]string{"code": "404"}); got != 0 {
		t.Errorf("%v requests answered 404 while loading", got)
	}
	if n := len(h.records(h.cfg.Topics.Clicks)) + len(h.records(h.cfg.Topics.Impressions)); n != 0 {
		t.Errorf("%d touches written while loading", n)
	}

	h.reg.SetLoaded()
	if a := h.get("/v1/click/cpc?s2s=1&ip=198.51.100.4"); a.code != 200 {
		t.Errorf("click once loaded: %d %s", a.code, a.body)
	}
	if a := h.get("/v1/click/nope"); a.code != 404 || a.json["field"] != "campaign_id" {
		t.Errorf("unknown campaign once loaded: %d %s", a.code, a.body)
	}
	if a := h.get("/readyz"); a.code != 200 {
		t.Errorf("/readyz once loaded: %d %s", a.code, a.body)
	}
}

// TestHostilePostbacksRejected sends what a black-box run got stored: an
// app_id with a NUL byte, with %FF%FE, and with raw bytes that are not
// UTF-8 (written on the wire as they are). Each is a 400 naming app_id and
// a record on the rejected topic with the raw request; none is an install.
func TestHostilePostbacksRejected(t *testing.T) {
	h := newHarness(t, nil)
	base := "/v1/postbacks/generic/install?token=" + genericToken + "&install_time=1795853553&app_id="
	for _, v := range []string{"id123456789%00", "%FF%FE"} {
		if a := h.get(base + v); a.code != 400 || a.json["field"] != "app_id" {
			t.Errorf("app_id=%s: %d %s, want 400 naming app_id", v, a.code, a.body)
		}
	}
	raw := rawRequest(t, h.http.Listener.Addr().String(), "GET "+base+"id\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 400") || !strings.Contains(raw, `"field":"app_id"`) {
		t.Errorf("raw bytes in app_id: %s", raw)
	}
	// JSON and form bodies, and the other formats' names for the fields.
	for _, tt := range []struct{ path, ct, body, field string }{
		{"/v1/postbacks/generic/install", "application/json", `{"app_id":"id1\u0000","install_time":1795853553}`, "app_id"},
		{"/v1/postbacks/generic/install", "application/json", "{\"app_id\":\"id1\",\"install_time\":1795853553,\"click_id\":\"k\xff\"}", "click_id"},
		{"/v1/postbacks/generic/event", "application/x-www-form-urlencoded", "app_id=com.a.b&event_time=1795853553&event_name=buy%1B", "event_name"},
		{"/v1/postbacks/appsflyer/install", "", "", "af_siteid"},
	} {
		path := tt.path + "?token=" + genericToken
		if strings.Contains(tt.path, "appsflyer") {
			path = tt.path + "?token=" + benchToken + "&app_id=id1&install_unix_ts=1795853553&af_siteid=s%C2%9B"
		}
		a := h.do("POST", path, tt.ct, tt.body, nil)
		if a.code != 400 || a.json["field"] != tt.field {
			t.Errorf("%s %q: %d %s, want 400 naming %s", tt.path, tt.body, a.code, a.body, tt.field)
		}
	}
	// Keyed by source: two partitions, so a longer quiet than h.records'
	// (which may stop after the first partition on a loaded machine).
	recs := testenv.ReadAll(t, h.brokers, h.cfg.Topics.Rejected)
	if len(recs) != 7 {
		t.Fatalf("%d rejected records, want 7", len(recs))
	}
	fields := map[string]int{}
	for _, r := range recs {
		var rej event.Rejected
		if err := json.Unmarshal(r.Value, &rej); err != nil {
			t.Fatal(err)
		}
		fields[rej.Field]++
		if rej.Raw.Path == "" || rej.Reason == "" {
			t.Errorf("rejected record without its request or reason: %s", r.Value)
		}
	}
	if fields["app_id"] != 4 || fields["click_id"] != 1 || fields["event_name"] != 1 || fields["af_siteid"] != 1 {
		t.Errorf("rejected fields %v", fields)
	}
	if n := len(h.records(h.cfg.Topics.InstallsRaw)) + len(h.records(h.cfg.Topics.EventsRaw)); n != 0 {
		t.Errorf("%d hostile postbacks accepted", n)
	}
}

// rawRequest writes req on a fresh connection to addr and returns the
// answer: for bytes an http.Client would escape.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestHostileTouchParams: the identifiers of clicks and impressions are held
// to the same rule, the user agent (query or header) to free text's.
func TestHostileTouchParams(t *testing.T) {
	h := newHarness(t, nil)
	for _, tt := range []struct{ path, field string }{
		{"/v1/click/cpi?site_id=pub%00", "site_id"},
		{"/v1/click/cpc?s2s=1&ip=198.51.100.4&creative_id=%FF%FE", "creative_id"},
		{"/v1/click/cpc?s2s=1&ip=198.51.100.4&ua=Mozilla%1B%5B2J", "ua"},
		{"/v1/impression/cpm?adset_id=a%C2%85b", "adset_id"},
		{"/v1/impression/cpm?sub_site_id=%E9t%E9", "sub_site_id"},
		{"/v1/click/cpi?sub3=a%0Ab", "sub3"},
		{"/v1/impression/cpm?sub5=" + strings.Repeat("x", 257), "sub5"},
	} {
		if a := h.get(tt.path); a.code != 400 || a.json["field"] != tt.field {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.path, a.code, a.body, tt.field)
		}
	}
	raw := rawRequest(t, h.http.Listener.Addr().String(), "GET /v1/click/cpi HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla\xff\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 400") || !strings.Contains(raw, `"field":"ua"`) {
		t.Errorf("a user agent that is not UTF-8: %s", raw)
	}
	if a := h.get("/v1/click/cpc?s2s=1&ip=198.51.100.4&ua=Mozilla%2F5.0%09(X11)&site_id=Caf%C3%A9"); a.code != 200 {
		t.Errorf("a tab in the user agent, UTF-8 in a site id: %d %s", a.code, a.body)
	}
	if n := len(h.records(h.cfg.Topics.Clicks)) + len(h.records(h.cfg.Topics.Impressions)); n != 1 {
		t.Errorf("%d touches written, want the 1 valid one", n)
	}
}

// TestMethodNotAllowed: a known path under another method is 405 with
// Allow, an unknown one 404.
func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t, nil)
	for _, tt := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/click/cpc", "GET, HEAD"},
		{"POST", "/v1/impression/cpm", "GET, HEAD"},
		{"PUT", "/v1/postbacks/generic/install?token=" + genericToken, "GET, HEAD, POST"},
		{"PATCH", "/v1/postbacks/nope/whatever", "GET, HEAD, POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"DELETE", "/metrics", "GET, HEAD"},
	} {
		a := h.do(tt.method, tt.path, "", "", nil)
		if a.code != 405 || a.header.Get("Allow") != tt.allow || a.json["field"] != "method" {
			t.Errorf("%s %s: %d Allow=%q %s, want 405 with Allow %q", tt.method, tt.path, a.code, a.header.Get("Allow"), a.body, tt.allow)
		}
	}
	for _, tt := range []struct{ method, path string }{{"GET", "/v2/whatever"}, {"POST", "/v1/click/"}, {"GET", "/v1/postbacks/generic"}} {
		if a := h.do(tt.method, tt.path, "", "", nil); a.code != 404 || a.json["field"] != "path" {
			t.Errorf("%s %s: %d %s, want 404", tt.method, tt.path, a.code, a.body)
		}
	}
	if n := len(h.records(h.cfg.Topics.Clicks)) + len(h.records(h.cfg.Topics.Rejected)); n != 0 {
		t.Errorf("%d records written by wrong methods", n)
	}
}

// TestIdempotencyKey: a click or impression sent with a key gets the id
// derived from its campaign and key, the same on a retry (header or
// parameter), another for another campaign or key.
func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, nil)
	s2s := "/v1/click/cpc?s2s=1&ip=198.51.100.4"
	first := h.do("GET", s2s, "", "", map[string]string{"Idempotency-Key": "req-0001"})
	retry := h.get(s2s + "&idempotency_key=req-0001")
	quoted := h.do("GET", s2s+"&idempotency_key=req-0001", "", "", map[string]string{"Idempotency-Key": `"req-0001"`})
	want := event.KeyedClickID("cpc", "req-0001")
	for i, a := range []answer{first, retry, quoted} {
		if a.code != 200 || a.json["click_id"] != want {
			t.Errorf("keyed click %d: %d %s, want click_id %s", i, a.code, a.body, want)
		}
	}
	if !event.IsKeyedTouchID(want) {
		t.Errorf("%s is not recognized as a keyed id", want)
	}
	other := h.get("/v1/click/cpi?s2s=1&ip=198.51.100.4&idempotency_key=req-0001")
	another := h.get(s2s + "&idempotency_key=req-0002")
	plain := h.get(s2s)
	ids := map[any]bool{want: true, other.json["click_id"]: true, another.json["click_id"]: true, plain.json["click_id"]: true}
	if len(ids) != 4 || event.IsKeyedTouchID(plain.json["click_id"].(string)) || !event.IsKeyedTouchID(other.json["click_id"].(string)) {
		t.Errorf("ids not distinct or misclassified: %v", ids)
	}
	if a := h.get("/v1/impression/cpm?idempotency_key=imp-1"); a.code != 204 {
		t.Errorf("keyed impression: %d %s", a.code, a.body)
	}
	for _, tt := range []struct {
		path   string
		header string
	}{
		{s2s + "&idempotency_key=a%20b", ""},
		{s2s + "&idempotency_key=" + strings.Repeat("k", 256), ""},
		{s2s + "&idempotency_key=", ""},
		{s2s + "&idempotency_key=x", "y"},
		{s2s, "caf\xc3\xa9"},
	} {
		hdr := map[string]string{}
		if tt.header != "" {
			hdr["Idempotency-Key"] = tt.header
		}
		if a := h.do("GET", tt.path, "", "", hdr); a.code != 400 || a.json["field"] != "idempotency_key" {
			t.Errorf("%s key header %q: %d %s, want 400 naming idempotency_key", tt.path, tt.header, a.code, a.body)
		}
	}
	clicks := map[string]int{}
	for _, r := range testenv.ReadAll(t, h.brokers, h.cfg.Topics.Clicks) { // several partitions
		clicks[string(r.Key)]++
	}
	if clicks[want] != 3 || len(clicks) != 4 {
		t.Errorf("clicks by key %v: want the keyed one 3 times (ingest writes every retry; downstream drops repeats)", clicks)
	}
	imps := h.records(h.cfg.Topics.Impressions)
	if len(imps) != 1 || string(imps[0].Key) != event.KeyedImpressionID("cpm", "imp-1") {
		t.Errorf("impressions: %d, key %q", len(imps), imps[0].Key)
	}
}
