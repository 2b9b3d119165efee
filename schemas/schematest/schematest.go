// Package schematest validates Go values against the topic JSON Schemas of
// schemas/events, for tests: every package that produces topic records
// proves them valid the same way.
//
//	s, err := schematest.Compile("installs.raw.v1")
//	err = schematest.Validate(s, install) // encodes with segmentio/encoding/json
package schematest

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/schemas"
)

// Base is the $id prefix of every event schema.
const Base = "https://adtrack.example/schemas/events/"

// Compile returns the schema of topic (e.g. "clicks.v1"), with every
// embedded schema loaded so that $refs resolve offline and formats are
// asserted.
func Compile(topic string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := fs.Glob(schemas.Events, "events/*.json")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no event schemas embedded: %v", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(schemas.Events, f)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := c.AddResource(Base+strings.TrimPrefix(f, "events/"), doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	s, err := c.Compile(Base + topic + ".schema.json")
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", topic, err)
	}
	return s, nil
}

// Validate encodes v as the pipeline does and validates it against s. The
// error quotes the encoded value.
func Validate(s *jsonschema.Schema, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%s\ndoes not match %s: %w", b, s.Location, err)
	}
	return nil
}
