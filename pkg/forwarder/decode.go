package forwarder

import (
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
	if install {
		var r installRecord
		if err := json.Unmarshal(value, &r); err != nil {
			return forward.Conversion{}, err
		}
		return forward.FromInstall(&r.AttributedInstall), nil
	}
	var r eventRecord
	if err := json.Unmarshal(value, &r); err != nil {
		return forward.Conversion{}, err
	}
	return forward.FromEvent(&r.AttributedEvent), nil
}
