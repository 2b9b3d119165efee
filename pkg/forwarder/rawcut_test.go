package forwarder

import "testing"

// TestRawSpan: which bytes the cut takes out of a record, and when it
// leaves the record whole for the decoder.
func TestRawSpan(t *testing.T) {
	for _, c := range []struct {
		name, in, want string // want: the record without the cut; "" when not cut
	}{
		{"middle", `{"a":1,"raw":{"q":"x"},"b":2}`, `{"a":1,"b":2}`},
		{"first", `{"raw":{"q":"x"},"b":2}`, `{"b":2}`},
		{"last", `{"a":1,"raw":{"q":"x"}}`, `{"a":1}`},
		{"only", `{"raw":{"q":"x"}}`, `{}`},
		{"spaces", ` { "a" : "r" , "raw" : { "q" : [ "x" , null , true , false , { } , [ ] ] } } `, ` { "a" : "r"  } `},
		{"escapes", `{"raw":{"q":"a\u0026b\"c\\d\/\b\f\n\r\t"},"b":2}`, `{"b":2}`},
		{"escaped quote before", `{"a":"x\"raw\":","raw":{},"b":2}`, `{"a":"x\"raw\":","b":2}`},
		{"backslash before quote", `{"a":"x\\","raw":{},"b":2}`, `{"a":"x\\","b":2}`},
		{"nested raw is not cut", `{"a":{"raw":{}},"b":2}`, ""},
		{"no raw", `{"a":1}`, ""},
		{"escaped key", `{"r\u0061w":{}}`, ""},
		{"number in raw", `{"raw":{"n":1}}`, ""},
		{"surrogate in raw", `{"raw":{"q":"\ud83d"}}`, ""},
		{"invalid escape in raw", `{"raw":{"q":"\x"}}`, ""},
		{"short escape in raw", `{"raw":{"q":"\u12"}}`, ""},
		{"non-ASCII in raw", `{"raw":{"q":"é"}}`, ""},
		{"control byte in raw", "{\"raw\":{\"q\":\"a\tb\"}}", ""},
		{"unbalanced raw", `{"raw":[{"q":"x"},"b":2}`, ""},
		{"trailing comma", `{"raw":"",}`, ""},
		{"missing comma", `{"a":1 "raw":{}}`, ""},
		{"truncated", `{"a":1,"raw":{"q":"x`, ""},
		{"not an object", `["raw",{}]`, ""},
		{"empty", ``, ""},
	} {
		from, to, ok := rawSpan([]byte(c.in))
		got := ""
		if ok {
			got = c.in[:from] + c.in[to:]
		}
		if got != c.want {
			t.Errorf("%s: %s -> %q (ok %v), want %q", c.name, c.in, got, ok, c.want)
		}
	}
}
