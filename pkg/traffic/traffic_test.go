package traffic

import (
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
	"github.com/adtrack/postback/pkg/postback"
)

func smallOptions() Options {
	o := Defaults()
	o.Run, o.Rate, o.Duration = "t1", 100, 10*time.Second
	return o
}

// TestGenerateDeterministic: one seed and run, one plan; another seed,
// another plan.
func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(smallOptions())
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans of one seed differ")
	}
	o := smallOptions()
	o.Seed = 2
	c, _ := Generate(o)
	if reflect.DeepEqual(a.Requests, c.Requests) {
		t.Fatal("plans of seeds 1 and 2 are equal")
	}
}

// TestGenerateCoversEveryCase: even a short run tours every journey each
// MMP supports, and requests are in time order after what they need.
func TestGenerateCoversEveryCase(t *testing.T) {
	p, err := Generate(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Requests); n < 1000 {
		t.Errorf("%d requests, want at least Rate x Duration = 1000", n)
	}
	seen := map[string]map[Case]bool{}
	for i, r := range p.Requests {
		if r.Seq != i {
			t.Fatalf("request %d has Seq %d", i, r.Seq)
		}
		if r.After >= i || (r.After >= 0 && p.Requests[r.After].At >= r.At) {
			t.Fatalf("request %d (%s) needs request %d, which is not before it", i, r.Kind, r.After)
		}
		if r.Postback == nil || r.Postback.Expect == nil {
			continue
		}
		if seen[r.Postback.MMP] == nil {
			seen[r.Postback.MMP] = map[Case]bool{}
		}
		seen[r.Postback.MMP][r.Postback.Expect.Case] = true
		if c := r.Postback.ClickFrom; c >= 0 {
			if k := p.Requests[c].Kind; k != ClickRedirect && k != ClickS2S {
				t.Fatalf("request %d carries the click id of request %d, a %s", i, c, k)
			}
		}
	}
	for _, m := range mmps {
		for _, c := range append(casesFor(m.name), CaseEvent) {
			if !seen[m.name][c] {
				t.Errorf("%s: no %s journey", m.name, c)
			}
		}
	}
	if len(p.Campaigns) != 14 || len(p.Apps) != 7 {
		t.Errorf("%d apps, %d campaigns; want 7 and 14", len(p.Apps), len(p.Campaigns))
	}
}

// TestRenderFollowsDocs: every postback the simulator sends is its MMP's
// template of docs/mmp, parameter for parameter and in order (plus what the
// MMP appends), with the token and no macro left unfilled.
func TestRenderFollowsDocs(t *testing.T) {
	p, err := Generate(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	res := Resolved{ClickID: "0193a5c2-0000-7000-8000-000000000001", InstallTime: now, ClickTime: now.Add(-time.Minute), EventTime: now.Add(time.Minute)}
	tokens := map[string]string{}
	for _, m := range mmps {
		tokens[m.name] = "tok-" + m.name
	}
	macro := regexp.MustCompile(`^(\(.*\)|\{.*\}|<.*>|\$\{.*\}|\{\{.*\}\})$`)
	for _, r := range p.Requests {
		hr := Render(r, res, tokens)
		u, err := url.Parse(hr.Path)
		if err != nil {
			t.Fatalf("request %d: %v", r.Seq, err)
		}
		if r.Postback == nil {
			if !strings.HasPrefix(u.Path, "/v1/click/") && !strings.HasPrefix(u.Path, "/v1/impression/") {
				t.Fatalf("touch %d: path %s", r.Seq, u.Path)
			}
			continue
		}
		tmpl := templates[r.Postback.MMP][r.Postback.Kind]
		_, tq, _ := strings.Cut(tmpl, "?")
		var want []string
		for _, kv := range strings.Split(tq, "&") {
			name, _, _ := strings.Cut(kv, "=")
			want = append(want, name)
		}
		var got []string
		for _, kv := range strings.Split(u.RawQuery, "&") {
			name, _, _ := strings.Cut(kv, "=")
			name, _ = url.QueryUnescape(name)
			got = append(got, name)
			v, _ := url.QueryUnescape(strings.SplitN(kv, "=", 2)[1])
			if macro.MatchString(v) {
				t.Fatalf("request %d: %s=%s left unfilled", r.Seq, name, v)
			}
		}
		if !reflect.DeepEqual(got[:len(want)], want) {
			t.Fatalf("request %d (%s %s): parameters %v, template %v", r.Seq, r.Postback.MMP, r.Postback.Kind, got, want)
		}
		for _, extra := range got[len(want):] {
			if r.Postback.MMP != "appsflyer" || (extra != "reject_reason" && extra != "is_rejected") {
				t.Fatalf("request %d: parameter %s is not in the template", r.Seq, extra)
			}
		}
		if tok := u.Query().Get("token"); (tok == tokens[r.Postback.MMP]) != (r.Fault != Unauthenticated) {
			t.Fatalf("request %d (%s): token %q", r.Seq, r.Fault, tok)
		}
	}
}

// TestTemplatesMatchDocs keeps the copied templates equal to docs/mmp.
func TestTemplatesMatchDocs(t *testing.T) {
	block := regexp.MustCompile("(?s)```template (\\w+)\n(.*?)\n```")
	kinds := map[string]Kind{"install": Install, "event": InAppEvent, "rejected": RejectedCB}
	for mmp, byKind := range templates {
		doc, err := os.ReadFile("../../docs/mmp/" + mmp + ".md")
		if err != nil {
			t.Fatal(err)
		}
		found := map[Kind]string{}
		for _, m := range block.FindAllStringSubmatch(string(doc), -1) {
			found[kinds[m[1]]] = strings.TrimSpace(m[2])
		}
		if !reflect.DeepEqual(found, byKind) {
			t.Errorf("docs/mmp/%s.md templates changed: update templates.go\n docs: %q\n here: %q", mmp, found, byKind)
		}
	}
}

// TestTruthCounts: the truth counts accepted requests only, puts every
// measure where the views do, and money exactly.
func TestTruthCounts(t *testing.T) {
	p, err := Generate(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	outs := make([]Outcome, len(p.Requests))
	var wantInstalls, wantMalformed, wantUnauth int
	for i, r := range p.Requests {
		o := Outcome{Seq: i, Status: 200, At: at, InstallTime: at, EventTime: at, Codes: map[int]int{200: 1}}
		switch {
		case r.Kind == ClickRedirect:
			o.Status, o.Codes = 302, map[int]int{302: 1}
		case r.Fault == Malformed:
			o.Status, o.Codes = 400, map[int]int{400: 1}
			wantMalformed++
		case r.Fault == Unauthenticated:
			o.Status, o.Codes = 401, map[int]int{401: 1}
			wantUnauth++
		case r.Kind == Install || r.Kind == RejectedCB:
			o.ID = "ev" + string(rune('a'+i%26)) + strings.Repeat("x", i)
			wantInstalls++
		}
		outs[i] = o
	}
	g := Truth(p, outs)
	if len(g.Unexpected) != 0 {
		t.Fatalf("unexpected: %v", g.Unexpected)
	}
	if len(g.Installs) != wantInstalls || g.Tables["installs"] != uint64(wantInstalls) {
		t.Errorf("installs %d (table %d), want %d", len(g.Installs), g.Tables["installs"], wantInstalls)
	}
	if g.Tables["rejected"] != uint64(wantMalformed) || g.Requests.Unauthenticated401 != uint64(wantUnauth) {
		t.Errorf("rejected %d unauth %d, want %d and %d", g.Tables["rejected"], g.Requests.Unauthenticated401, wantMalformed, wantUnauth)
	}
	var sum Measures
	for _, m := range g.Rows {
		sum.Impressions += m.Impressions
		sum.Clicks += m.Clicks
		sum.InstallPostbacks += m.InstallPostbacks
		sum.Installs += m.Installs + m.Reinstalls + m.RejectedInstalls
	}
	if sum.InstallPostbacks != uint64(wantInstalls) || sum.Installs != sum.InstallPostbacks {
		t.Errorf("install rows %+v, want %d postbacks split into new, reinstalls and rejected", sum, wantInstalls)
	}
	if sum.Impressions != g.Tables["impressions"] || sum.Clicks != g.Tables["clicks"] {
		t.Errorf("rows %d impressions %d clicks; tables %v", sum.Impressions, sum.Clicks, g.Tables)
	}
	for _, it := range g.Installs {
		if it.Case == CaseOrganic && (it.Match != event.MatchOrganic || it.CampaignID != "") {
			t.Errorf("organic install expected as %+v", it)
		}
	}
	// Compared with itself, it is equal; one click less is not.
	found := &Found{Rows: g.Rows, Installs: map[string][]InstallTruth{}, Tables: g.Tables, Distinct: g.Tables}
	for id, it := range g.Installs {
		found.Installs[id] = []InstallTruth{it}
	}
	if r := Compare(g, found); !r.Equal() {
		var b strings.Builder
		r.Print(&b)
		t.Fatalf("truth compared with itself:\n%s", b.String())
	}
	for k, m := range g.Rows {
		if m.Clicks > 0 {
			c := *m
			c.Clicks--
			rows := map[Key]*Measures{}
			for k2, m2 := range g.Rows {
				rows[k2] = m2
			}
			rows[k] = &c
			found.Rows = rows
			break
		}
	}
	if Compare(g, found).Equal() {
		t.Fatal("a click less compares equal")
	}
}

// TestRenderedPostbacksParse runs every postback of a plan through the
// ingest parser: valid ones parse to what was designed (click id, device,
// install and event times, revenue), malformed ones fail naming the broken
// field.
func TestRenderedPostbacksParse(t *testing.T) {
	p, err := Generate(smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, r := range p.Requests {
		pb := r.Postback
		if pb == nil || r.Fault == Unauthenticated {
			continue
		}
		res := Resolved{InstallTime: now.Add(-time.Minute), ClickTime: now.Add(-2 * time.Minute), EventTime: now.Add(-30 * time.Second)}
		if pb.ClickFrom >= 0 {
			res.ClickID = "0193a5c2-0000-7000-8000-000000000001"
		}
		hr := Render(r, res, map[string]string{pb.MMP: "tok"})
		u, _ := url.Parse(hr.Path)
		q := u.Query()
		q.Del("token")
		kind := postback.Kind(pb.Kind)
		if pb.Kind == RejectedCB {
			kind = postback.KindRejected
		}
		parsed, err := postback.Parse(&postback.Request{MMP: pb.MMP, Kind: kind, Params: q, ReceivedAt: now,
			Raw: event.Raw{Method: "GET", Path: u.Path, Query: u.RawQuery}})
		if r.Fault == Malformed {
			if err == nil {
				t.Errorf("request %d (%s, broken %s) parsed", r.Seq, pb.MMP, pb.BadField)
			}
			continue
		}
		if err != nil {
			t.Fatalf("request %d (%s %s %s): %v\n%s", r.Seq, pb.MMP, pb.Kind, pb.Expect.Case, err, hr.Path)
		}
		var got *event.Postback
		var when time.Time
		if pb.Kind == InAppEvent {
			got, when = &parsed.Event.Postback, parsed.Event.EventTime
			if !when.Equal(res.EventTime) {
				t.Errorf("request %d (%s event): event time %v, want %v", r.Seq, pb.MMP, when, res.EventTime)
			}
			if pb.Revenue != "" && parsed.Event.Revenue.String() != mustAmount(t, pb.Revenue) {
				t.Errorf("request %d (%s event): revenue %+v, want %s %s", r.Seq, pb.MMP, parsed.Event.Revenue, pb.Revenue, pb.Currency)
			}
		} else {
			got, when = &parsed.Install.Postback, parsed.Install.InstallTime
			if !when.Equal(res.InstallTime) {
				t.Errorf("request %d (%s install): install time %v, want %v", r.Seq, pb.MMP, when, res.InstallTime)
			}
			if parsed.Install.Rejected != (pb.Kind == RejectedCB) {
				t.Errorf("request %d (%s %s): rejected %v", r.Seq, pb.MMP, pb.Kind, parsed.Install.Rejected)
			}
		}
		if got.ClickID != res.ClickID || got.AppID != pb.App.ID || got.Platform != pb.App.Platform {
			t.Errorf("request %d (%s): click %q app %q platform %q; want %q %q %q", r.Seq, pb.MMP, got.ClickID, got.AppID, got.Platform, res.ClickID, pb.App.ID, pb.App.Platform)
		}
		if pb.WithAdID && got.AdID() != pb.Device.IDFA+pb.Device.GAID {
			t.Errorf("request %d (%s): ad id %q, want %q", r.Seq, pb.MMP, got.AdID(), pb.Device.IDFA+pb.Device.GAID)
		}
		if !pb.WithAdID && got.AdID() != "" {
			t.Errorf("request %d (%s): ad id %q, want none", r.Seq, pb.MMP, got.AdID())
		}
		if pb.WithIPUA && (got.IP != pb.Device.IP || (got.UA != "" && got.UA != pb.Device.UA) || (pb.Expect.Case == CaseProbabilistic && got.UA == "")) {
			t.Errorf("request %d (%s %s): ip %q ua %q, want %q %q", r.Seq, pb.MMP, pb.Kind, got.IP, got.UA, pb.Device.IP, pb.Device.UA)
		}
		if got.JoinKey() == "" {
			t.Errorf("request %d (%s): no join key", r.Seq, pb.MMP)
		}
	}
}

func mustAmount(t *testing.T, s string) string {
	a, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}
