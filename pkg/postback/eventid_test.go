package postback

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestEventIDStableAcrossRetries replays each doc template as an MMP retries
// it: parameters reordered, the token left in, received later, the same
// values repeated; the id must not move.
func TestEventIDStableAcrossRetries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mmp := range MMPs() {
		for _, kind := range []Kind{KindInstall, KindEvent} {
			params := templateParams(t, mmp, kind)
			first := mustParse(t, request(mmp, kind, params))
			for i := 0; i < 20; i++ {
				retry := shuffled(rng, params)
				retry.Set("token", "s3cr3t")
				if i%2 == 0 {
					for k, v := range retry {
						retry[k] = append(v, v[0]) // the same value twice
					}
				}
				req := request(mmp, kind, retry)
				req.ReceivedAt = receivedAt.Add(time.Duration(i) * 15 * time.Minute) // AppsFlyer's retry spacing
				req.Raw.RemoteIP = "194.28.46.1"
				if got := mustParse(t, req); got != first {
					t.Fatalf("%s %s: retry %d got event_id %s, first %s", mmp, kind, i, got, first)
				}
			}
		}
	}
}

// TestEventIDGetAndJSONAgree: the same generic event as a GET template and
// as a JSON body (different spellings of the same values) gets one id.
func TestEventIDGetAndJSONAgree(t *testing.T) {
	get := url.Values{"app_id": {"com.example.game"}, "gaid": {strings.ToUpper(sGAID)}, "event_name": {"purchase"},
		"event_time": {"2026-11-28 09:30:01"}, "revenue": {"4.990"}, "currency": {"eur"}, "click_id": {sClick}}
	body, err := BodyParams("application/json", []byte(`{"app_id":"com.example.game","gaid":"`+sGAID+
		`","event_name":"purchase","event_time":1795858201,"revenue":4.99,"currency":"EUR","click_id":"`+sClick+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	a := mustParse(t, request(MMPGeneric, KindEvent, get))
	b := mustParse(t, request(MMPGeneric, KindEvent, body))
	if a != b {
		t.Errorf("GET id %s, JSON id %s", a, b)
	}
}

// TestEventIDDiffers changes one identifying field at a time: every change
// must give a new id.
func TestEventIDDiffers(t *testing.T) {
	base := url.Values{"app_id": {"com.example.game"}, "gaid": {sGAID}, "idfv": {"v1"}, "android_id": {sAndroidID},
		"event_name": {"purchase"}, "event_time": {"1795858201"}, "revenue": {"4.99"}, "currency": {"EUR"},
		"click_id": {sClick}, "event_value": {`{"sku":"a"}`}, "install_time": {"1795853553"}}
	changes := map[string][2]string{
		"app":        {"app_id", "com.example.other"},
		"gaid":       {"gaid", "38400000-8cf0-11bd-b23e-10b96e40000e"},
		"idfv":       {"idfv", "v2"},
		"android id": {"android_id", "9774d56d682e549d"},
		"name":       {"event_name", "purchase2"},
		"time":       {"event_time", "1795858202"},
		"time ms":    {"event_time", "1795858201001"},
		"revenue":    {"revenue", "4.98"},
		"currency":   {"currency", "USD"},
		"click":      {"click_id", "k-other"},
		"value":      {"event_value", `{"sku":"b"}`},
	}
	seen := map[string]string{"base": mustParse(t, request(MMPGeneric, KindEvent, base))}
	for name, ch := range changes {
		p := cloneValues(base)
		p.Set(ch[0], ch[1])
		id := mustParse(t, request(MMPGeneric, KindEvent, p))
		for other, oid := range seen {
			if oid == id {
				t.Errorf("changing %s gives the same id as %s: %s", name, other, id)
			}
		}
		seen[name] = id
	}
	// Not identifying: the install time of an event, the IP, the UA.
	p := cloneValues(base)
	p.Set("install_time", "1795853000")
	p.Set("ip", "198.51.100.1")
	p.Set("ua", "x")
	if id := mustParse(t, request(MMPGeneric, KindEvent, p)); id != seen["base"] {
		t.Errorf("non-identifying fields changed the id")
	}
	// The same install on /install and on /rejected are two records.
	inst := url.Values{"app_id": {"a.b"}, "install_time": {"1795853553"}, "reject_reason": {"bots"}}
	if mustParse(t, request(MMPGeneric, KindInstall, inst)) == mustParse(t, request(MMPGeneric, KindRejected, inst)) {
		t.Error("install and rejected endpoints share an id")
	}
	// Two MMPs reporting the same device and time are different postbacks.
	if mustParse(t, request(MMPGeneric, KindInstall, inst)) == hashOf(MMPAppsFlyer, inst) {
		t.Error("different MMPs share an id")
	}
}

// TestHashFieldBoundaries: moving bytes from one field to the next must
// change the hash (fields are length-prefixed).
func TestHashFieldBoundaries(t *testing.T) {
	when := receivedAt
	a := hashEventID(&idInput{mmp: "generic", kind: "install", appID: "ab", clickID: "c", when: when})
	b := hashEventID(&idInput{mmp: "generic", kind: "install", appID: "a", clickID: "bc", when: when})
	if a == b || !isHexID(a) {
		t.Errorf("ambiguous hash: %s %s", a, b)
	}
}

func hashOf(mmp string, params url.Values) string {
	p := &parser{spec: specFor(mmp), req: request(mmp, KindInstall, params), receivedAt: receivedAt}
	if err := p.spec.collect(params, &p.fv); err != nil {
		return err.Error()
	}
	pb, _ := p.postback()
	id, _ := p.eventID(&pb, receivedAt, "", "", "", 0)
	return id
}

func mustParse(t *testing.T, req *Request) string {
	t.Helper()
	p, err := Parse(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.MMP, req.Kind, err)
	}
	_, pb := record(t, req.Kind, p)
	return pb.EventID
}

// shuffled copies params into a new map with each key's insertion order
// randomized (Go maps are unordered anyway; Encode sorts, so shuffle the
// values' order of repeated keys too).
func shuffled(rng *rand.Rand, params url.Values) url.Values {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	out := url.Values{}
	for _, k := range keys {
		out[k] = append([]string(nil), params[k]...)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
