package attribution

import (
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/adtrack/postback/schemas/schematest"
)

func compileSchema(t *testing.T, topic string) *jsonschema.Schema {
	t.Helper()
	s, err := schematest.Compile(topic)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, v any) {
	t.Helper()
	if err := schematest.Validate(s, v); err != nil {
		t.Fatal(err)
	}
}

// TestSchemas: every outcome of the rule table, and the events that inherit
// from it, is a valid record of its output topic (fraud flags, match types,
// currencies and amounts included), so the engine cannot emit what the sink
// or a downstream consumer would refuse.
func TestSchemas(t *testing.T) {
	installs := compileSchema(t, "installs.attributed.v1")
	events := compileSchema(t, "events.attributed.v1")
	for _, tc := range decideCases() {
		r := DefaultRules()
		if tc.rules != nil {
			tc.rules(&r)
		}
		got := r.Decide(tc.in, tc.c, camps, decidedAt)
		t.Run(tc.name, func(t *testing.T) {
			validate(t, installs, got)
			ev, err := AttributeEvent(purchase(), &got, eventRates, decidedAt)
			if err != nil {
				t.Fatal(err)
			}
			validate(t, events, ev)
		})
	}
	ev, _ := AttributeEvent(purchase(), nil, eventRates, decidedAt)
	validate(t, events, ev)
}
