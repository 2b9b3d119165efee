package postback

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/schemas/schematest"
)

// receivedAt is when the test postbacks "arrived"; the sample times are the
// morning of the same day.
var receivedAt = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// docBlock is a fenced block of docs/mmp/<mmp>.md whose info string is
// "<typ> <kind>": template (a URL), appended (parameters the MMP adds on its
// own) or webhook (a URL line, then a JSON body).
type docBlock struct {
	typ  string
	kind Kind
	body string
}

func docPath(name string) string { return filepath.Join("..", "..", "docs", "mmp", name) }

func readDoc(t testing.TB, mmp string) string {
	t.Helper()
	b, err := os.ReadFile(docPath(mmp + ".md"))
	if err != nil {
		t.Fatalf("docs for %s: %v", mmp, err)
	}
	return string(b)
}

func docBlocks(t testing.TB, mmp string) []docBlock {
	t.Helper()
	var out []docBlock
	var cur *docBlock
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readDoc(t, mmp)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			f := strings.Fields(strings.TrimPrefix(line, "```"))
			if len(f) == 2 && (f[0] == "template" || f[0] == "appended" || f[0] == "webhook") {
				cur = &docBlock{typ: f[0], kind: Kind(f[1])}
				body.Reset()
			} else if len(f) > 0 || line == "```" {
				cur = &docBlock{} // some other block: skip to its end
			}
		case cur != nil && line == "```":
			if cur.typ != "" {
				cur.body = strings.TrimSpace(body.String())
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	return out
}

func findBlock(blocks []docBlock, typ string, kind Kind) (docBlock, bool) {
	for _, b := range blocks {
		if b.typ == typ && b.kind == kind {
			return b, true
		}
	}
	return docBlock{}, false
}

// fillTemplate substitutes sample values for the macros and <placeholders>
// of one template URL, as the MMP would, and returns its path and params.
func fillTemplate(t testing.TB, mmp string, kind Kind, tmpl string) (string, url.Values) {
	t.Helper()
	path, query, ok := strings.Cut(tmpl, "?")
	if !ok {
		t.Fatalf("%s %s template has no query: %s", mmp, kind, tmpl)
	}
	path = strings.Replace(path, "<host>", "postbacks.adtrack.example", 1)
	params := url.Values{}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"), isMacro(v):
			s, ok := sample(mmp, kind, v)
			if !ok {
				t.Fatalf("%s %s template: no sample value for %s (add one to samples)", mmp, kind, v)
			}
			v = s
		}
		params.Add(k, v)
	}
	return path, params
}

// templateParams returns the doc's template for mmp/kind filled with sample
// values, with the parameters the MMP appends on its own, token removed.
func templateParams(t testing.TB, mmp string, kind Kind) url.Values {
	t.Helper()
	blocks := docBlocks(t, mmp)
	b, ok := findBlock(blocks, "template", kind)
	if !ok {
		t.Fatalf("docs/mmp/%s.md has no %q template", mmp, kind)
	}
	path, params := fillTemplate(t, mmp, kind, b.body)
	if want := "https://postbacks.adtrack.example/v1/postbacks/" + mmp + "/" + string(kind); path != want {
		t.Fatalf("%s %s template posts to %s, want %s", mmp, kind, path, want)
	}
	if params.Get("token") == "" {
		t.Fatalf("%s %s template has no token", mmp, kind)
	}
	params.Del("token") // ingest strips it
	if a, ok := findBlock(blocks, "appended", kind); ok {
		extra, err := url.ParseQuery(a.body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range extra {
			params[k] = v
		}
	}
	return params
}

func request(mmp string, kind Kind, params url.Values) *Request {
	return &Request{
		MMP: mmp, Kind: kind, Params: params, ReceivedAt: receivedAt,
		Raw: event.Raw{Method: "GET", Path: "/v1/postbacks/" + mmp + "/" + string(kind), Query: params.Encode(), RemoteIP: "45.92.116.10"},
	}
}

// record returns the one record of a Parsed, checking there is exactly one
// and that it fits the kind.
func record(t testing.TB, kind Kind, p Parsed) (any, *event.Postback) {
	t.Helper()
	switch {
	case kind == KindEvent && p.Event != nil && p.Install == nil:
		return p.Event, &p.Event.Postback
	case kind != KindEvent && p.Install != nil && p.Event == nil:
		return p.Install, &p.Install.Postback
	}
	t.Fatalf("kind %s: Parsed holds install=%v event=%v", kind, p.Install != nil, p.Event != nil)
	return nil, nil
}

// flat encodes a record as the pipeline does and flattens the JSON into
// "a.b" -> value, so expectations read like the topic's fields.
func flat(t testing.TB, v any) url.Values {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	out, err := BodyParams("application/json", b)
	if err != nil {
		t.Fatalf("flatten %s: %v", b, err)
	}
	return out
}

var (
	schemaOnce sync.Once
	schemaSet  map[string]*jsonschema.Schema
	schemaErr  error
)

// validate checks an encoded record against the topic's JSON schema.
func validate(t testing.TB, kind Kind, v any) {
	t.Helper()
	schemaOnce.Do(func() { schemaSet, schemaErr = loadSchemas() })
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	topic := "installs.raw.v1"
	if kind == KindEvent {
		topic = "events.raw.v1"
	}
	// Validate what goes on the topic: the encoded record, decoded back.
	var doc any
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err == nil {
		err = schemaSet[topic].Validate(doc)
	}
	if err != nil {
		t.Fatalf("%s against %s: %v", b, topic, err)
	}
}

func loadSchemas() (map[string]*jsonschema.Schema, error) {
	out := map[string]*jsonschema.Schema{}
	for _, topic := range []string{"installs.raw.v1", "events.raw.v1"} {
		s, err := schematest.Compile(topic)
		if err != nil {
			return nil, err
		}
		out[topic] = s
	}
	return out, nil
}

// pbCase is one row of an MMP's table test: the doc's template for kind,
// filled with the sample values, then changed by set ("-" deletes a
// parameter); want lists encoded fields ("" = must be absent, "<hash>" for
// event_id = a hashed id); err, if set, is the parameter the *FieldError
// must name.
type pbCase struct {
	name string
	kind Kind
	set  map[string]string
	want map[string]string
	err  string
}

func runCases(t *testing.T, mmp string, cases []pbCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := templateParams(t, mmp, c.kind)
			for k, v := range c.set {
				if v == "-" {
					params.Del(k)
				} else {
					params.Set(k, v)
				}
			}
			p, err := Parse(request(mmp, c.kind, params))
			if c.err != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != c.err {
					t.Fatalf("err = %v, want a FieldError on %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			rec, pb := record(t, c.kind, p)
			validate(t, c.kind, rec)
			got := flat(t, rec)
			for k, want := range c.want {
				if k == "event_id" && want == "<hash>" {
					if !isHexID(pb.EventID) {
						t.Errorf("event_id = %q, want a 32-hex-digit hash", pb.EventID)
					}
					continue
				}
				if g := got.Get(k); g != want {
					t.Errorf("%s = %q, want %q", k, g, want)
				}
			}
			if pb.MMP != mmp || !pb.ReceivedAt.Equal(receivedAt) || pb.Raw.Query != params.Encode() {
				t.Errorf("mmp/received_at/raw not carried over: %+v", pb)
			}
			checkEventID(t, mmp, c.kind, params, pb.EventID)
		})
	}
}

// checkEventID checks the id's form and that a retry (parameters in
// another order, the token back, received an hour later) keeps it.
func checkEventID(t *testing.T, mmp string, kind Kind, params url.Values, id string) {
	t.Helper()
	if !strings.HasPrefix(id, mmp+":") && !isHexID(id) {
		t.Errorf("event_id %q is neither <mmp>:<id> nor 32 hex digits", id)
	}
	retry := request(mmp, kind, MergeParams(url.Values{"token": {"s3cr3t"}}, params))
	retry.ReceivedAt = receivedAt.Add(time.Hour)
	p, err := Parse(retry)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, pb := record(t, kind, p); pb.EventID != id {
		t.Errorf("retry got event_id %s, first %s", pb.EventID, id)
	}
}

func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}
