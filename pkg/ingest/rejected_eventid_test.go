package ingest

import (
	"testing"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
)

// TestRejectedKeepsEventID: a refused postback that carried the MMP's own
// id keeps it in the rejected record, so operators find it by that id.
func TestRejectedKeepsEventID(t *testing.T) {
	h := newHarness(t, nil)
	// No install time: refused, but the event id is known.
	a := h.get("/v1/postbacks/generic/install?token=" + genericToken + "&event_id=ord-77&app_id=id123456789")
	if a.code != 400 {
		t.Fatalf("answer %d %s", a.code, a.body)
	}
	// A body that does not parse: the id from the query string is kept.
	b := h.do("POST", "/v1/postbacks/generic/rejected?token="+genericToken+"&event_id=ord-78", "application/json", "{not json", nil)
	if b.code != 400 {
		t.Fatalf("answer %d %s", b.code, b.body)
	}
	// No id at all: empty, as before.
	c := h.get("/v1/postbacks/generic/install?token=" + genericToken + "&app_id=id123456789")
	if c.code != 400 {
		t.Fatalf("answer %d %s", c.code, c.body)
	}
	recs := h.records(h.cfg.Topics.Rejected)
	if len(recs) != 3 {
		t.Fatalf("%d rejected records, want 3", len(recs))
	}
	want := []string{"generic:ord-77", "generic:rejected:ord-78", ""}
	for i, r := range recs {
		var rej event.Rejected
		if err := json.Unmarshal(r.Value, &rej); err != nil {
			t.Fatal(err)
		}
		if rej.EventID != want[i] {
			t.Errorf("rejected %d: event_id %q, want %q (%s)", i, rej.EventID, want[i], r.Value)
		}
	}
}
