package join

import (
	"strings"

	"github.com/adtrack/postback/pkg/event"
)

// A touch's publisher sub ids (event.PublisherSubs) travel and are stored
// as one string: empty when none is set, else the five joined by NUL (ingest
// refuses control characters in them). Values written before sub ids
// existed lack it, so where it comes last it is optional (readOptionalSubs),
// and a pending install says by a flag that its touch records carry it.

const subsSep = "\x00"

func appendSubs(dst []byte, s *event.PublisherSubs) []byte {
	if s.IsZero() {
		return appendString(dst, "")
	}
	return appendString(dst, strings.Join([]string{s.Sub1, s.Sub2, s.Sub3, s.Sub4, s.Sub5}, subsSep))
}

// appendOptionalSubs appends the sub ids at the end of a value only when
// one is set, so a touch without them costs no byte more than before.
func appendOptionalSubs(dst []byte, s *event.PublisherSubs) []byte {
	if s.IsZero() {
		return dst
	}
	return appendSubs(dst, s)
}

// subs reads what appendSubs wrote.
func (r *wireReader) subs(s *event.PublisherSubs) {
	v := r.str()
	if v == "" || r.err != nil {
		return
	}
	parts := strings.Split(v, subsSep)
	if len(parts) != 5 {
		r.fail()
		return
	}
	for i, f := range s.Fields() {
		*f = parts[i]
	}
}

// optionalSubs reads sub ids that end a value, if it has them.
func (r *wireReader) optionalSubs(s *event.PublisherSubs) {
	if r.err == nil && len(r.b) > 0 {
		r.subs(s)
	}
}

// appendTouchValue encodes a click or impression record of the by-device
// and by-ipua topics: tag, touch record, and the sub ids if any.
func appendTouchValue(tag byte, id string, t *event.Touch) []byte {
	return appendOptionalSubs(appendTouchRecord([]byte{tag}, id, t), &t.PublisherSubs)
}

// decodeTouchValue decodes what appendTouchValue wrote after its tag.
func decodeTouchValue(b []byte, t *event.Touch) (id string, err error) {
	r := wireReader{b: b}
	id = r.touchRecord(t)
	r.optionalSubs(&t.PublisherSubs)
	return id, r.end()
}
