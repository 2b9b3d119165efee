package postback

import (
	stdjson "encoding/json"
	"testing"

	"github.com/segmentio/encoding/json"
)

// BenchmarkParse measures what ingest does per postback once it has the
// parameters: parse, normalize and JSON-encode the record (with its raw
// request), for the install and event templates of every MMP's doc, filled
// with realistic values. Budget: 3 µs per postback.
func BenchmarkParse(b *testing.B) {
	for _, mmp := range MMPs() {
		for _, kind := range []Kind{KindInstall, KindEvent} {
			req := request(mmp, kind, templateParams(b, mmp, kind))
			b.Run(mmp+"/"+string(kind), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p, err := Parse(req)
					if err != nil {
						b.Fatal(err)
					}
					var rec any = p.Install
					if p.Event != nil {
						rec = p.Event
					}
					if _, err := json.Marshal(rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkParseAppend is BenchmarkParse with the encoding ingest can use
// instead of Marshal: json.Append into a reused buffer, without HTML
// escaping (Marshal escapes every "&" of the raw query as \u0026 and
// allocates a fresh buffer each time).
func BenchmarkParseAppend(b *testing.B) {
	for _, mmp := range MMPs() {
		req := request(mmp, KindEvent, templateParams(b, mmp, KindEvent))
		b.Run(mmp+"/event", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				p, err := Parse(req)
				if err != nil {
					b.Fatal(err)
				}
				if buf, err = json.Append(buf[:0], p.Event, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseOnly isolates Parse (no encoding), to see where time goes.
func BenchmarkParseOnly(b *testing.B) {
	for _, mmp := range []string{MMPAppsFlyer, MMPBranch} {
		req := request(mmp, KindEvent, templateParams(b, mmp, KindEvent))
		b.Run(mmp+"/event", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBodyParams measures flattening a JSON webhook body (Branch's).
func BenchmarkBodyParams(b *testing.B) {
	blk, ok := findBlock(docBlocks(b, MMPBranch), "webhook", KindEvent)
	if !ok {
		b.Fatal("no Branch webhook example")
	}
	body := []byte(blk.body[len(firstLine(blk.body)):])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BodyParams("application/json", body); err != nil {
			b.Fatal(err)
		}
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// BenchmarkBaselineMarshalParams is the floor BenchmarkParseAppend is read
// against, side by side in one run: encoding the same parameters, unparsed
// and unvalidated, with the standard library's encoding/json. Ingest cannot
// do less than that per postback.
func BenchmarkBaselineMarshalParams(b *testing.B) {
	for _, mmp := range MMPs() {
		params := templateParams(b, mmp, KindEvent)
		b.Run(mmp+"/event", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stdjson.Marshal(params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
