package forward

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

var (
	t0   = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ctit = int64(42)
	tt   = t0.Add(-42 * time.Second)
)

func attr(mt event.MatchType) event.Attribution {
	return event.Attribution{MatchType: mt, TouchID: "k1", TouchTime: &tt, CTITSeconds: &ctit, CampaignID: "c1",
		MediaSource: "pub_int", AdsetID: "as1", CreativeID: "cr1", SiteID: "site7", SubSiteID: "sub9", AttributedAt: t0.Add(time.Second),
		Sub1: "pub-a", Sub2: "pub b&c", Sub5: "5",
		FraudFlags: []string{"click_flooding"}}
}

func inst(mt event.MatchType) *event.AttributedInstall {
	return &event.AttributedInstall{Install: event.Install{Postback: event.Postback{EventID: "e1", AppID: "com.example.game",
		Platform: event.PlatformAndroid, Country: "DE",
		Device: event.Device{IDFA: "6d92078a-8246-4ba4-ae5b-76104861e7dc", GAID: "38400000-8cf0-11bd-b23e-10b96e40000d",
			IDFV: "IDFV-1", AndroidID: "9774d56d682e549c", IP: "203.0.113.7", UA: "Mozilla/5.0"}}, InstallTime: t0},
		Attribution: attr(mt)}
}

func ev(name event.Taxonomy, orig string) *event.AttributedEvent {
	it := t0
	return &event.AttributedEvent{InAppEvent: event.InAppEvent{Postback: event.Postback{EventID: "ev1", AppID: "com.example.game",
		Device: event.Device{GAID: "38400000-8cf0-11bd-b23e-10b96e40000d"}},
		EventTime: t0.Add(time.Hour), InstallTime: &it, Name: name, OriginalName: orig, Revenue: 4_990_000, Currency: "EUR", Value: `{"sku":"x"}`},
		Attribution: attr(event.MatchClickID), InstallEventID: "e1", RevenueReporting: 5_389_200, ReportingCurrency: "USD"}
}

func mustValidate(t *testing.T, ep Endpoint) *Endpoint {
	t.Helper()
	if ep.KeyID == "" {
		ep.KeyID = "k1"
	}
	if err := Validate(&ep, nil); err != nil {
		t.Fatal(err)
	}
	return &ep
}

// TestMatchRules: which conversion goes to which endpoint.
func TestMatchRules(t *testing.T) {
	all := Match{}
	events := Match{Kinds: []string{KindEvent}}
	both := Match{Kinds: []string{KindInstall, KindEvent}}
	rejected := inst(event.MatchClickID)
	rejected.Rejected = true
	for _, c := range []struct {
		name  string
		match Match
		conv  Conversion
		want  bool
	}{
		{"install, default kinds", all, FromInstall(inst(event.MatchClickID)), true},
		{"organic install never", all, FromInstall(inst(event.MatchOrganic)), false},
		{"organic event never", both, FromEvent(func() *event.AttributedEvent {
			e := ev(event.NamePurchase, "buy")
			e.MatchType = event.MatchOrganic
			return e
		}()), false},
		{"MMP-rejected install never", all, FromInstall(rejected), false},
		{"event not asked for", all, FromEvent(ev(event.NamePurchase, "buy")), false},
		{"install not asked for", events, FromInstall(inst(event.MatchClickID)), false},
		{"event asked for", events, FromEvent(ev(event.NamePurchase, "buy")), true},
		{"view-through install", all, FromInstall(inst(event.MatchViewThrough)), true},
		{"media source listed", Match{MediaSources: []string{"x", "pub_int"}}, FromInstall(inst(event.MatchDeviceID)), true},
		{"media source not listed", Match{MediaSources: []string{"x"}}, FromInstall(inst(event.MatchDeviceID)), false},
		{"campaign not listed", Match{Campaigns: []string{"c2"}}, FromInstall(inst(event.MatchClickID)), false},
		{"site listed", Match{SiteIDs: []string{"site7"}}, FromInstall(inst(event.MatchClickID)), true},
		{"site not listed", Match{SiteIDs: []string{"site8"}}, FromInstall(inst(event.MatchClickID)), false},
		{"app not listed", Match{Apps: []string{"other"}}, FromInstall(inst(event.MatchClickID)), false},
		{"event name by taxonomy", Match{Kinds: []string{KindEvent}, EventNames: []string{"purchase"}}, FromEvent(ev(event.NamePurchase, "af_purchase")), true},
		{"event name by original name", Match{Kinds: []string{KindEvent}, EventNames: []string{"AF_Purchase"}}, FromEvent(ev(event.NameCustom, "af_purchase")), true},
		{"event name not listed", Match{Kinds: []string{KindEvent}, EventNames: []string{"level_achieved"}}, FromEvent(ev(event.NamePurchase, "buy")), false},
	} {
		ep := mustValidate(t, Endpoint{ID: "p", URL: "https://pub.example/cb", Match: c.match})
		if got := ep.Matches(c.conv); got != c.want {
			t.Errorf("%s: Matches = %v, want %v", c.name, got, c.want)
		}
		reg := NewRegistry(nil)
		reg.Put(*ep)
		if got := len(reg.Match(c.conv)) == 1; got != c.want {
			t.Errorf("%s: Registry.Match = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRenderEveryMacro fills every macro, GET and POST (form and JSON).
func TestRenderEveryMacro(t *testing.T) {
	var fields = map[string]string{}
	for _, m := range Macros() {
		fields[m] = "{" + m + "}"
	}
	hash := func(s string) string { h := sha256.Sum256([]byte(strings.ToLower(s))); return hex.EncodeToString(h[:]) }
	c := FromEvent(ev(event.NamePurchase, "af_purchase"))
	id := DeliveryID(KindEvent, "ev1", "p")
	want := map[string]string{
		"delivery_id": id, "event_id": "ev1", "kind": "event", "app_id": "com.example.game", "platform": "", "country": "",
		"click_id": "k1", "touch_id": "k1", "match_type": "click_id", "media_source": "pub_int", "campaign_id": "c1",
		"adset_id": "as1", "creative_id": "cr1", "site_id": "site7", "sub_site_id": "sub9",
		"sub1": "pub-a", "sub2": "pub b&c", "sub3": "", "sub4": "", "sub5": "5",
		"touch_time": "2026-11-28T09:59:18Z", "install_time": "2026-11-28T10:00:00Z", "install_unix": "1795860000", "ctit": "42",
		"attributed_at": "2026-11-28T10:00:01Z", "event_name": "purchase", "original_event_name": "af_purchase",
		"event_time": "2026-11-28T11:00:00Z", "event_value": `{"sku":"x"}`, "install_event_id": "e1",
		"revenue": "4.99", "currency": "EUR", "revenue_reporting": "5.3892", "reporting_currency": "USD",
		"payout": "1.61676", "payout_currency": "USD", "is_reinstall": "0", "fraud_flags": "click_flooding",
		"idfa": "", "gaid": hash("38400000-8cf0-11bd-b23e-10b96e40000d"), "idfv": "", "android_id": "", "ip": "", "ua": "",
	}
	if len(want) != len(Macros()) {
		t.Fatalf("the test covers %d macros of %d", len(want), len(Macros()))
	}
	share := money.FromMicros(300_000)
	for _, method := range []struct{ method, body string }{{"GET", ""}, {"POST", "form"}, {"POST", "json"}} {
		ep := mustValidate(t, Endpoint{ID: "p", URL: "https://pub.example/cb/{site_id}?click={click_id}", Method: method.method,
			Body: method.body, Fields: fields, DeviceIDs: DeviceHashed, Match: Match{Kinds: []string{KindEvent}},
			Payout: Payout{Model: PayoutRevenueShare, Share: share}})
		req, err := Render(ep, c)
		if err != nil {
			t.Fatal(err)
		}
		if req.DeliveryID != id || req.Method != method.method {
			t.Errorf("%v: delivery %s method %s", method, req.DeliveryID, req.Method)
		}
		u, _ := url.Parse(req.URL)
		if u.Path != "/cb/site7" || u.Query().Get("click") != "k1" {
			t.Errorf("%v: URL template filled as %s", method, req.URL)
		}
		got := map[string]string{}
		switch {
		case method.method == "GET":
			for k, v := range u.Query() {
				got[k] = v[0]
			}
		case method.body == "json":
			if req.ContentType != "application/json" {
				t.Errorf("json: content type %q", req.ContentType)
			}
			if err := json.Unmarshal(req.Body, &got); err != nil {
				t.Fatal(err)
			}
		default:
			if req.ContentType != "application/x-www-form-urlencoded" {
				t.Errorf("form: content type %q", req.ContentType)
			}
			q, _ := url.ParseQuery(string(req.Body))
			for k, v := range q {
				got[k] = v[0]
			}
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%v: {%s} = %q, want %q", method, name, got[name], v)
			}
		}
		again, _ := Render(ep, c)
		if string(again.Body) != string(req.Body) || again.URL != req.URL {
			t.Errorf("%v: two renders differ", method)
		}
	}
}

func TestDeviceIDsAndPayouts(t *testing.T) {
	c := FromInstall(inst(event.MatchClickID))
	for _, d := range []struct{ policy, want string }{{DeviceRaw, "38400000-8cf0-11bd-b23e-10b96e40000d"}, {DeviceNone, ""}} {
		ep := mustValidate(t, Endpoint{ID: "p", URL: "https://x.example/?g={gaid}&ip={ip}", DeviceIDs: d.policy,
			Payout: Payout{Model: "CPI", Amount: 1_500_000, Currency: "usd"}})
		req, _ := Render(ep, c)
		u, _ := url.Parse(req.URL)
		if u.Query().Get("g") != d.want {
			t.Errorf("%s: gaid %q, want %q", d.policy, u.Query().Get("g"), d.want)
		}
		if req.Payout != 1_500_000 || req.Currency != "USD" {
			t.Errorf("cpi payout %s %s", req.Payout, req.Currency)
		}
	}
	cpa := mustValidate(t, Endpoint{ID: "p", URL: "https://x.example/", Match: Match{Kinds: []string{KindInstall, KindEvent}},
		Payout: Payout{Model: PayoutCPA, Amount: 200_000, Currency: "EUR"}})
	if p, cur := PayoutOf(cpa, c); p != 0 || cur != "" {
		t.Errorf("cpa pays %s %s for an install", p, cur)
	}
	if p, cur := PayoutOf(cpa, FromEvent(ev(event.NamePurchase, "buy"))); p != 200_000 || cur != "EUR" {
		t.Errorf("cpa pays %s %s for an event", p, cur)
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, c := range []struct {
		name, field string
		ep          Endpoint
	}{
		{"file scheme", "url", Endpoint{URL: "file:///etc/passwd"}},
		{"gopher", "url", Endpoint{URL: "gopher://x.example/"}},
		{"loopback", "url", Endpoint{URL: "http://127.0.0.1:8080/cb"}},
		{"metadata", "url", Endpoint{URL: "http://169.254.169.254/latest/meta-data/"}},
		{"private", "url", Endpoint{URL: "http://10.0.0.1/cb"}},
		{"ipv6 loopback", "url", Endpoint{URL: "http://[::1]/cb"}},
		{"mapped loopback", "url", Endpoint{URL: "http://[::ffff:127.0.0.1]/cb"}},
		{"macro in host", "url", Endpoint{URL: "https://{site_id}.example/cb"}},
		{"unknown macro", "url", Endpoint{URL: "https://x.example/?a={clickid}"}},
		{"unknown macro in a field", "fields.a", Endpoint{URL: "https://x.example/", Fields: map[string]string{"a": "{nope}"}}},
		{"method", "method", Endpoint{URL: "https://x.example/", Method: "PUT"}},
		{"body on GET", "body", Endpoint{URL: "https://x.example/", Body: "json"}},
		{"device ids", "device_ids", Endpoint{URL: "https://x.example/", DeviceIDs: "some"}},
		{"kinds", "match.kinds", Endpoint{URL: "https://x.example/", Match: Match{Kinds: []string{"click"}}}},
		{"event names without events", "match.event_names", Endpoint{URL: "https://x.example/", Match: Match{EventNames: []string{"purchase"}}}},
		{"cpa without events", "payout.model", Endpoint{URL: "https://x.example/", Payout: Payout{Model: "cpa", Amount: 1, Currency: "USD"}}},
		{"share above 1", "payout.share", Endpoint{URL: "https://x.example/", Match: Match{Kinds: []string{"event"}}, Payout: Payout{Model: "revenue_share", Share: 2_000_000}}},
		{"currency", "payout.currency", Endpoint{URL: "https://x.example/", Payout: Payout{Model: "cpi", Amount: 1, Currency: "XX"}}},
	} {
		ep := c.ep
		ep.ID, ep.KeyID = "p", "k1"
		err := Validate(&ep, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
	ep := Endpoint{ID: "p", URL: "https://x.example/"}
	if err := Validate(&ep, nil); err == nil || !strings.Contains(err.Error(), "signing_key_id") {
		t.Errorf("no key id: %v", err)
	}
}

func TestEgress(t *testing.T) {
	var none Egress
	allow := Egress{AllowCIDRs: []string{"127.0.0.1/32"}}
	if err := allow.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip      string
		refused bool
		allowed bool // refused without the allow list, allowed with it
	}{
		{"93.184.216.34", false, false}, {"127.0.0.1", true, true}, {"127.0.0.2", true, false}, {"169.254.169.254", true, false},
		{"10.0.0.1", true, false}, {"192.168.1.1", true, false}, {"172.16.0.1", true, false}, {"100.64.0.1", true, false},
		{"0.0.0.0", true, false}, {"::1", true, false}, {"fe80::1", true, false}, {"fd00::1", true, false},
		{"64:ff9b::7f00:1", true, true}, {"2606:4700::1111", false, false},
	} {
		ip := netip.MustParseAddr(c.ip)
		err := none.CheckIP(ip)
		if (err != nil) != c.refused || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%s: %v, refused want %v", c.ip, err, c.refused)
		}
		if c.refused && (allow.CheckIP(ip) == nil) != c.allowed {
			t.Errorf("%s with 127.0.0.1/32 allowed: %v", c.ip, allow.CheckIP(ip))
		}
	}
	lookup := func(host string) ([]net.IP, error) {
		return map[string][]net.IP{"inside.example": {net.ParseIP("10.1.2.3")}, "pub.example": {net.ParseIP("93.184.216.34")}}[host], nil
	}
	if err := none.CheckHost("https://inside.example/cb", lookup); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "private") {
		t.Errorf("a name resolving inside: %v", err)
	}
	if err := none.CheckHost("https://pub.example/cb?x={click_id}", lookup); err != nil {
		t.Errorf("a public name: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	body := []byte(`{"click_id":"k1"}`)
	now := time.Unix(1_800_000_000, 0)
	sig := Sign(key, now.Unix(), "POST", "/cb?a=1", body)
	ts := "1800000000"
	if err := Verify(key, sig, ts, "POST", "/cb?a=1", body, now, 5*time.Minute); err != nil {
		t.Fatalf("our own signature: %v", err)
	}
	for name, c := range map[string]struct {
		sig, ts, method, target string
		body                    []byte
		at                      time.Time
		want                    error
	}{
		"tampered body":   {sig, ts, "POST", "/cb?a=1", []byte(`{"click_id":"k2"}`), now, ErrBadSignature},
		"tampered query":  {sig, ts, "POST", "/cb?a=2", body, now, ErrBadSignature},
		"other method":    {sig, ts, "GET", "/cb?a=1", body, now, ErrBadSignature},
		"other timestamp": {sig, "1800000001", "POST", "/cb?a=1", body, now, ErrBadSignature},
		"stale":           {sig, ts, "POST", "/cb?a=1", body, now.Add(time.Hour), ErrStale},
		"wrong key":       {Sign([]byte("another key 0123456"), now.Unix(), "POST", "/cb?a=1", body), ts, "POST", "/cb?a=1", body, now, ErrBadSignature},
	} {
		if err := Verify(key, c.sig, c.ts, c.method, c.target, c.body, c.at, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// TestSignerMatchesSign checks that the reusing Signer, from many
// goroutines, gives what Sign gives (a reused HMAC left dirty would not).
func TestSignerMatchesSign(t *testing.T) {
	const secret = "0123456789abcdef0123"
	key := []byte(secret)
	s := NewSigner(key)
	key[0] = 'x' // the Signer keeps its own copy
	key = []byte(secret)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				body := []byte(strings.Repeat("b", i))
				target := "/cb?i=" + strconv.Itoa(i*g)
				if got, want := s.Sign(int64(1_800_000_000+i), "POST", target, body), Sign(key, int64(1_800_000_000+i), "POST", target, body); got != want {
					t.Errorf("Signer %s, Sign %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestRetryPolicy(t *testing.T) {
	p := Retry{Initial: time.Second, MaxBackoff: 8 * time.Second, Period: time.Minute, MaxAttempts: 5}
	first := t0
	for _, c := range []struct {
		name    string
		r       Result
		attempt int
		now     time.Time
		want    string
		minWait time.Duration
	}{
		{"2xx", Result{Status: 204}, 1, t0, OutcomeDelivered, 0},
		{"500", Result{Status: 500}, 1, t0, OutcomeRetrying, 500 * time.Millisecond},
		{"503 on the 5th attempt", Result{Status: 503}, 5, t0, OutcomeExpired, 0},
		{"408", Result{Status: 408}, 1, t0, OutcomeRetrying, 0},
		{"429 with Retry-After", Result{Status: 429, RetryAfter: 20 * time.Second}, 1, t0, OutcomeRetrying, 20 * time.Second},
		{"429 past the period", Result{Status: 429, RetryAfter: 2 * time.Minute}, 1, t0, OutcomeExpired, 0},
		{"400", Result{Status: 400}, 1, t0, OutcomeFailed, 0},
		{"404", Result{Status: 404}, 1, t0, OutcomeFailed, 0},
		{"302 not followed further", Result{Status: 302}, 1, t0, OutcomeFailed, 0},
		{"timeout", Result{Err: errors.New("timeout")}, 2, t0, OutcomeRetrying, time.Second},
		{"refused destination", Result{Err: ErrRefused}, 1, t0, OutcomeFailed, 0},
		{"period over", Result{Status: 500}, 2, t0.Add(59500 * time.Millisecond), OutcomeExpired, 0},
	} {
		d := p.Decide(c.r, c.attempt, first, c.now, 0)
		if d.Outcome != c.want {
			t.Errorf("%s: %s, want %s", c.name, d.Outcome, c.want)
		}
		if d.Outcome == OutcomeRetrying && d.Next.Sub(c.now) < c.minWait {
			t.Errorf("%s: next in %s, want at least %s", c.name, d.Next.Sub(c.now), c.minWait)
		}
	}
	for attempt, want := range map[int][2]time.Duration{1: {500 * time.Millisecond, time.Second}, 2: {time.Second, 2 * time.Second},
		4: {4 * time.Second, 8 * time.Second}, 9: {4 * time.Second, 8 * time.Second}} {
		lo, hi := p.Backoff(attempt, 0), p.Backoff(attempt, 0.999999)
		if lo != want[0] || hi > want[1] || hi < want[1]-time.Millisecond {
			t.Errorf("backoff after attempt %d: [%s, %s], want [%s, %s]", attempt, lo, hi, want[0], want[1])
		}
	}
	if d := ParseRetryAfter("120", t0); d != 2*time.Minute {
		t.Errorf("Retry-After 120: %s", d)
	}
	if d := ParseRetryAfter(t0.Add(30*time.Second).Format(http.TimeFormat), t0); d != 30*time.Second {
		t.Errorf("Retry-After date: %s", d)
	}
}

func TestParseYAML(t *testing.T) {
	eps, err := ParseYAML([]byte(`
endpoints:
  - endpoint_id: pub42
    publisher: Pub 42
    match: {media_sources: [pub42_int], kinds: [install, event], event_names: [purchase]}
    url: "https://pub42.example/cb?click={click_id}&sub={sub_site_id}"
    method: post
    body: json
    payout: {model: revenue_share, share: "0.3"}
    device_ids: hashed
    signing_key_id: pub42-2026
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Method != "POST" || eps[0].Payout.Share != 300_000 || eps[0].DeviceIDs != DeviceHashed {
		t.Errorf("parsed %+v", eps)
	}
	for name, doc := range map[string]string{
		"unknown key": "endpoints:\n  - {endpoint_id: a, url: \"https://x.example/\", signing_key_id: k, urll: x}\n",
		"duplicate":   "endpoints:\n  - {endpoint_id: a, url: \"https://x.example/\", signing_key_id: k}\n  - {endpoint_id: a, url: \"https://x.example/\", signing_key_id: k}\n",
		"empty":       "endpoints: []\n",
		"bad amount":  "endpoints:\n  - {endpoint_id: a, url: \"https://x.example/\", signing_key_id: k, payout: {model: cpi, amount: abc, currency: USD}}\n",
		"file url":    "endpoints:\n  - {endpoint_id: a, url: \"file:///etc/passwd\", signing_key_id: k}\n",
	} {
		if _, err := ParseYAML([]byte(doc), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLocalExample keeps deploy/local/endpoints.yaml and the example in
// docs/configuration.md valid.
func TestLocalExample(t *testing.T) {
	data, err := os.ReadFile("../../deploy/local/endpoints.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if eps, err := ParseYAML(data, nil); err != nil || len(eps) != 2 {
		t.Errorf("deploy/local/endpoints.yaml: %d endpoints, %v", len(eps), err)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```yaml\nendpoints:")
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("docs/configuration.md: no endpoints example")
	}
	if _, err := ParseYAML([]byte("endpoints:"+example), nil); err != nil {
		t.Errorf("docs/configuration.md example: %v", err)
	}
}
