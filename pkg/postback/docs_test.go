package postback

import (
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestDocTemplatesParse fills every template of docs/mmp/*.md with sample
// values, as the MMP would, and parses it: a template the parser cannot read,
// or one using a parameter name the parser does not know, fails here.
func TestDocTemplatesParse(t *testing.T) {
	for _, mmp := range MMPs() {
		blocks := docBlocks(t, mmp)
		for _, kind := range []Kind{KindInstall, KindEvent} {
			if _, ok := findBlock(blocks, "template", kind); !ok {
				t.Errorf("docs/mmp/%s.md: no %s template", mmp, kind)
			}
		}
		for _, b := range blocks {
			if _, ok := ParseKind(string(b.kind)); !ok {
				t.Errorf("docs/mmp/%s.md: block %q has unknown kind %q", mmp, b.typ, b.kind)
				continue
			}
			switch b.typ {
			case "template":
				t.Run(mmp+"/"+string(b.kind), func(t *testing.T) {
					params := templateParams(t, mmp, b.kind)
					for k := range params {
						if _, ok := specFor(mmp).aliases.get(k); !ok {
							t.Errorf("template parameter %q is not read by the %s parser", k, mmp)
						}
					}
					parseDocRequest(t, request(mmp, b.kind, params))
				})
			case "webhook":
				t.Run(mmp+"/"+string(b.kind)+"/webhook", func(t *testing.T) {
					parseDocRequest(t, webhookRequest(t, mmp, b))
				})
			}
		}
	}
}

// webhookRequest builds the request of a "webhook" block: its first line is
// the URL, the rest the JSON body.
func webhookRequest(t *testing.T, mmp string, b docBlock) *Request {
	t.Helper()
	line, body, _ := strings.Cut(b.body, "\n")
	u, err := url.Parse(strings.Replace(strings.Replace(line, "<host>", "postbacks.adtrack.example", 1), "<token>", "s3cr3t", 1))
	if err != nil {
		t.Fatal(err)
	}
	bp, err := BodyParams("application/json; charset=utf-8", []byte(body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	q := u.Query()
	q.Del("token")
	req := request(mmp, b.kind, MergeParams(q, bp))
	req.Raw.Method, req.Raw.ContentType, req.Raw.Body = "POST", "application/json", body
	return req
}

func parseDocRequest(t *testing.T, req *Request) {
	t.Helper()
	p, err := Parse(req)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	rec, pb := record(t, req.Kind, p)
	validate(t, req.Kind, rec)
	if pb.AppID == "" || pb.EventID == "" || pb.Platform == "" {
		t.Errorf("app_id %q, event_id %q, platform %q: want all set", pb.AppID, pb.EventID, pb.Platform)
	}
}

// TestDocsListEveryParameter checks that each MMP's page lists every
// parameter name its parser reads, so the docs say what the code does.
func TestDocsListEveryParameter(t *testing.T) {
	for _, s := range specs {
		doc := readDoc(t, s.name)
		for _, name := range s.names {
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/mmp/%s.md does not list parameter `%s`", s.name, name)
			}
		}
	}
}

// TestDocsIndex checks that docs/mmp/README.md links every MMP's page.
func TestDocsIndex(t *testing.T) {
	b, err := os.ReadFile(docPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mmp := range MMPs() {
		if !strings.Contains(string(b), "("+mmp+".md)") {
			t.Errorf("docs/mmp/README.md does not link %s.md", mmp)
		}
	}
}
