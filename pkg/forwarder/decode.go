package forwarder

import (
	"fmt"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/forward"
)

// skipped decodes to nothing: the decoder only finds where the value ends.
type skipped struct{}

// UnmarshalJSON ignores the value.
func (*skipped) UnmarshalJSON([]byte) error { return nil }

// No callback uses the MMP's raw request, and it is most of a real record
// (an AppsFlyer postback's query alone is about a kilobyte): these shadow
// Postback.Raw, a shallower field of the same name winning, so it is
// skipped rather than decoded (about 3x cheaper per record).
type (
	installRecord struct {
		event.AttributedInstall
		Raw skipped `json:"raw"`
	}
	eventRecord struct {
		event.AttributedEvent
		Raw skipped `json:"raw"`
	}
)

// decodeConversion reads an attributed install (install) or in-app event
// record into a conversion, without its raw request.
func decodeConversion(install bool, value []byte) (forward.Conversion, error) {
	var flags json.ParseFlags
	if from, to, ok := rawSpan(value); ok {
		// A copy of its own: decoded strings can point into it (one
		// allocation, not one a field) without holding the fetch's buffer.
		rest := make([]byte, 0, len(value)-(to-from))
		value, flags = append(append(rest, value[:from]...), value[to:]...), json.DontCopyString
	}
	if install {
		var r installRecord
		if err := parse(value, &r, flags); err != nil {
			return forward.Conversion{}, err
		}
		return forward.FromInstall(&r.AttributedInstall), nil
	}
	var r eventRecord
	if err := parse(value, &r, flags); err != nil {
		return forward.Conversion{}, err
	}
	return forward.FromEvent(&r.AttributedEvent), nil
}

// parse is json.Unmarshal with flags: what follows the value, unless
// whitespace, is an error.
func parse(value []byte, v any, flags json.ParseFlags) error {
	rest, err := json.Parse(value, v, flags)
	if _, syntax := err.(*json.SyntaxError); len(rest) > 0 && !syntax {
		return fmt.Errorf("invalid character %q after top-level value", rest[0])
	}
	return err
}
