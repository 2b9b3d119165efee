package postback

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/adtrack/postback/pkg/event"
)

func TestCheckIdentifierAndText(t *testing.T) {
	tests := []struct {
		in         string
		ident, txt error // nil: accepted
	}{
		{"id123456789", nil, nil},
		{"com.example.game", nil, nil},
		{"Spaß 🎮 site", nil, nil},
		{"", nil, nil},
		{"id1\x00", ErrControlChar, ErrControlChar},
		{"\x00", ErrControlChar, ErrControlChar},
		{"a\tb", ErrControlChar, nil},
		{"a\r\nb", ErrControlChar, nil},
		{"a\x1b[31m", ErrControlChar, ErrControlChar},
		{"a\x7f", ErrControlChar, ErrControlChar},
		{"a\u0085b", ErrControlChar, ErrControlChar}, // C1 NEL, valid UTF-8
		{"é\u009f", ErrControlChar, ErrControlChar},
		{"\xff\xfe", ErrInvalidUTF8, ErrInvalidUTF8},
		{"id\xe9", ErrInvalidUTF8, ErrInvalidUTF8},       // Latin-1 é
		{"\xed\xa0\x80", ErrInvalidUTF8, ErrInvalidUTF8}, // a surrogate
		{"\xc0\x80", ErrInvalidUTF8, ErrInvalidUTF8},     // overlong NUL
		{"ok\u00a0\u200b\ufffd", nil, nil},               // no controls: NBSP, ZWSP, a literal U+FFFD
	}
	for _, tt := range tests {
		if err := CheckIdentifier(tt.in); !errors.Is(err, tt.ident) || (err == nil) != (tt.ident == nil) {
			t.Errorf("CheckIdentifier(%q) = %v, want %v", tt.in, err, tt.ident)
		}
		if err := CheckText(tt.in); !errors.Is(err, tt.txt) || (err == nil) != (tt.txt == nil) {
			t.Errorf("CheckText(%q) = %v, want %v", tt.in, err, tt.txt)
		}
	}
}

// hostile are the values the black-box run got stored: a NUL byte, bytes
// that are not UTF-8 (what %FF%FE decodes to, and raw), plus an escape
// sequence and a C1 control.
var hostile = []struct {
	name, suffix string
	want         error
}{
	{"NUL", "\x00", ErrControlChar},
	{"%FF%FE", "\xff\xfe", ErrInvalidUTF8},
	{"raw Latin-1", "caf\xe9", ErrInvalidUTF8},
	{"ESC", "\x1b[2J", ErrControlChar},
	{"C1", "\u0085", ErrControlChar},
}

// TestHostileValuesRefused puts each hostile value into every parameter of
// every MMP's documented install, event and rejected templates in turn:
// each one the MMP's table reads is refused with a FieldError naming that
// parameter, whatever its field (identifiers, free text, times, amounts).
func TestHostileValuesRefused(t *testing.T) {
	for _, mmp := range MMPs() {
		sp := specFor(mmp)
		blocks := docBlocks(t, mmp)
		for _, kind := range []Kind{KindInstall, KindEvent, KindRejected} {
			if _, ok := findBlock(blocks, "template", kind); !ok {
				continue
			}
			base := templateParams(t, mmp, kind)
			if _, err := Parse(request(mmp, kind, base)); err != nil {
				t.Fatalf("%s %s template: %v", mmp, kind, err)
			}
			var fv fieldValues
			if err := sp.collect(base, &fv); err != nil {
				t.Fatal(err)
			}
			tested := 0
			for key, vals := range base {
				if a, ok := sp.aliases.get(strings.ToLower(key)); !ok || fv[a.field].key != key {
					continue // not read (another name of the field wins): kept only in the raw request
				}
				for _, h := range hostile {
					// Inside the value: white space at its ends (U+0085 is) is trimmed.
					v := "y" + vals[0] + h.suffix + "z"
					params := cloneValues(base)
					params.Set(key, v)
					_, err := Parse(request(mmp, kind, params))
					var fe *FieldError
					if !errors.As(err, &fe) || fe.Field != key || !errors.Is(err, h.want) {
						t.Errorf("%s %s: %s=%q: err = %v, want a FieldError on %q wrapping %v", mmp, kind, key, v, err, key, h.want)
					}
				}
				tested++
			}
			if tested < 3 {
				t.Errorf("%s %s: only %d parameters tested", mmp, kind, tested)
			}
		}
	}
}

// TestHostileValuesInBodies: the same through JSON (an escaped \u0000, raw
// bytes that are not UTF-8) and form bodies.
func TestHostileValuesInBodies(t *testing.T) {
	tests := []struct {
		name, ct, body, field string
		want                  error
	}{
		{"json escaped NUL", "application/json", `{"app_id":"id1\u0000","install_time":1795853553}`, "app_id", ErrControlChar},
		{"json raw bytes", "application/json", "{\"app_id\":\"id1\",\"install_time\":1795853553,\"click_id\":\"k\xff\xfe\"}", "click_id", ErrInvalidUTF8},
		{"json lone surrogate", "application/json", `{"app_id":"id1","install_time":1795853553,"site_id":"s\ud800"}`, "site_id", ErrInvalidUTF8},
		{"json bad key", "application/json", "{\"app_id\":\"id1\",\"k\xff\":\"v\"}", "body", ErrInvalidUTF8},
		{"json nested", "application/json", `{"app_id":"id1","install_time":1795853553,"user_data":{"x":1},"site_id":"s\u001b"}`, "site_id", ErrControlChar},
		{"form %FF%FE", "application/x-www-form-urlencoded", "app_id=%FF%FE&install_time=1795853553", "app_id", ErrInvalidUTF8},
		{"form %00", "application/x-www-form-urlencoded", "app_id=id1&install_time=1795853553&idfv=%00", "idfv", ErrControlChar},
		{"form ua", "application/x-www-form-urlencoded", "app_id=id1&install_time=1795853553&ua=Mozilla%FF", "ua", ErrInvalidUTF8},
	}
	for _, tt := range tests {
		// A JSON body's strings are checked as they are read (the
		// tokenizer would replace bad bytes), a form's by Parse.
		params, err := BodyParams(tt.ct, []byte(tt.body))
		if err == nil {
			_, err = Parse(request(MMPGeneric, KindInstall, params))
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want a FieldError on %q wrapping %v", tt.name, err, tt.field, tt.want)
		}
	}
}

// TestFreeTextKeepsWhitespace: tabs and line breaks are text, not hostile,
// in the free-text fields (an event value holding pretty-printed JSON).
func TestFreeTextKeepsWhitespace(t *testing.T) {
	params := url.Values{"app_id": {"com.a.b"}, "event_time": {"1795853553"}, "event_name": {"purchase"},
		"event_value": {"{\n\t\"sku\": \"x\"\r\n}"}, "ua": {"Mozilla/5.0\t(X11)"}, "campaign_name": {"Été – ünïcode"}}
	p, err := Parse(request(MMPGeneric, KindEvent, params))
	if err != nil {
		t.Fatal(err)
	}
	if p.Event.Value != params.Get("event_value") || p.Event.UA != "Mozilla/5.0\t(X11)" || p.Event.CampaignName != "Été – ünïcode" {
		t.Errorf("free text changed: %+v", p.Event)
	}
	params.Set("event_name", "purchase\n")
	if _, err := Parse(request(MMPGeneric, KindEvent, params)); err != nil {
		t.Errorf("a trailing newline is trimmed white space, not hostile: %v", err)
	}
	params.Set("event_name", "pur\nchase")
	if _, err := Parse(request(MMPGeneric, KindEvent, params)); !errors.Is(err, ErrControlChar) {
		t.Errorf("a line break inside an event name: err = %v, want ErrControlChar", err)
	}
}

// checkRecordStrings fails when a string of an accepted record is not
// valid UTF-8 or holds a control character (free text: other than tab, CR,
// LF). The raw request is exempt: it is kept as it came.
func checkRecordStrings(t *testing.T, pb *event.Postback, rec any) {
	t.Helper()
	text := map[string]bool{"UA": true, "CampaignName": true, "Value": true, "RejectReason": true}
	var walk func(v reflect.Value, name string)
	walk = func(v reflect.Value, name string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), name)
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				if f.IsExported() && f.Name != "Raw" {
					walk(v.Field(i), f.Name)
				}
			}
		case reflect.String:
			if err := checkChars(v.String(), text[name]); err != nil {
				t.Fatalf("accepted record field %s = %q: %v (event %s)", name, v.String(), err, pb.EventID)
			}
		}
	}
	walk(reflect.ValueOf(rec), "")
}

// checkCharsRef is checkChars written plainly, rune by rune.
func checkCharsRef(s string, text bool) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return ErrInvalidUTF8
		case text && (r == '\t' || r == '\n' || r == '\r'):
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return ErrControlChar
		}
	}
	return nil
}

// FuzzCheckChars: the word-at-a-time scan agrees with the plain one, on the
// verdict and on the reason.
func FuzzCheckChars(f *testing.F) {
	for _, s := range []string{"", "id123456789", "com.example.game.long.bundle", "0123456\x00", "01234567\x7f", "abcdefgh\x1fijk",
		"Mozilla/5.0 (X11; Linux x86_64)\tGecko", "caf\xe9 au lait", "\u0085 ok", "12345678\xc2\x85", "\ufffd\ufffd", "~~~~~~~~ !!!!!!!!"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, text bool) {
		got, want := checkChars(s, text), checkCharsRef(s, text)
		if (got == nil) != (want == nil) || (got != nil && !errors.Is(got, want)) {
			t.Fatalf("checkChars(%q, %v) = %v, plain scan says %v", s, text, got, want)
		}
	})
}
