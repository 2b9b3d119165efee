package postback

import (
	"net/url"
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// Kind is the kind of postback endpoint: /v1/postbacks/{mmp}/{kind}.
type Kind string

// Endpoint kinds. KindRejected receives the MMPs' blocked/rejected-install
// callbacks; it yields an Install with Rejected set.
const (
	KindInstall  Kind = "install"
	KindEvent    Kind = "event"
	KindRejected Kind = "rejected"
)

// ParseKind maps the {kind} path segment to a Kind; ok is false for anything
// else (the segment is matched exactly, lower case).
func ParseKind(s string) (Kind, bool) {
	switch k := Kind(s); k {
	case KindInstall, KindEvent, KindRejected:
		return k, true
	}
	return "", false
}

// MMP names, as they appear in the endpoint path and in event.Postback.MMP.
const (
	MMPAppsFlyer = "appsflyer"
	MMPAdjust    = "adjust"
	MMPBranch    = "branch"
	MMPSingular  = "singular"
	MMPKochava   = "kochava"
	MMPTenjin    = "tenjin"
	MMPGeneric   = "generic"
)

// MMPs lists the supported MMP names in a fixed order. The slice is new on
// every call, so callers may keep or modify it.
func MMPs() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

// KnownMMP reports whether name is one of MMPs() (exact, lower case).
func KnownMMP(name string) bool { return specFor(name) != nil }

// Request is one authenticated postback, as the ingest service hands it over.
type Request struct {
	// MMP is the {mmp} path segment, e.g. "appsflyer".
	MMP string
	// Kind is the {kind} path segment.
	Kind Kind
	// Params are the query string and body parameters merged by MergeParams
	// (the body wins on a name present in both), with the auth token removed.
	Params url.Values
	// Raw is the original request, copied verbatim into the parsed record so
	// that it can be re-parsed later.
	Raw event.Raw
	// ReceivedAt is when ingest received the request (UTC). It bounds the
	// postback's own times (no more than a day ahead) but never enters the
	// event id, so retries of one postback keep their id.
	ReceivedAt time.Time
}

// Parsed holds exactly one of Install (for kinds install and rejected) or
// Event (for kind event).
type Parsed struct {
	Install *event.Install
	Event   *event.InAppEvent
}
