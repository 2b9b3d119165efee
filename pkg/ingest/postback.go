package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/postback"
)

// tokenParam is the query parameter carrying the shared token; it is
// removed before the request is stored, so tokens never reach Kafka.
const tokenParam = "token"

func (s *Server) handlePostback(w http.ResponseWriter, r *http.Request) string {
	mmp, kindText := r.PathValue("mmp"), r.PathValue("kind")
	if !postback.KnownMMP(mmp) {
		writeError(w, http.StatusNotFound, "mmp", fmt.Sprintf("unknown MMP %q (known: %s)", mmp, strings.Join(postback.MMPs(), ", ")))
		return "unknown"
	}
	kind, ok := postback.ParseKind(kindText)
	if !ok {
		writeError(w, http.StatusNotFound, "kind", fmt.Sprintf("unknown postback kind %q (install, event or rejected)", kindText))
		return mmp
	}
	src := s.sources[mmp]
	if src == nil {
		s.m.unauthenticated.WithLabelValues(mmp, "source_disabled").Inc()
		writeError(w, http.StatusUnauthorized, "token", fmt.Sprintf("source %s is not enabled on this endpoint", mmp))
		return mmp
	}
	ip := clientIP(r, s.trusted)
	if !src.allowed(ip) {
		s.m.unauthenticated.WithLabelValues(mmp, "ip_not_allowed").Inc()
		writeError(w, http.StatusForbidden, "", fmt.Sprintf("client address %s is not on the %s allow-list", ip, mmp))
		return mmp
	}
	query := r.URL.Query()
	tok := r.Header.Get("X-Postback-Token")
	if tok == "" {
		tok = query.Get(tokenParam)
	}
	query.Del(tokenParam)
	rawQuery := withoutParam(r.URL.RawQuery, tokenParam)
	if tok == "" {
		s.m.unauthenticated.WithLabelValues(mmp, "missing_token").Inc()
		writeError(w, http.StatusUnauthorized, "token", "missing token: pass ?token= or the X-Postback-Token header")
		return mmp
	}
	match := src.match(tok)
	if !match.ok() {
		s.m.unauthenticated.WithLabelValues(mmp, "bad_token").Inc()
		writeError(w, http.StatusUnauthorized, "token", "invalid token")
		return mmp
	}
	if !src.limit.take(s.now()) {
		writeRetry(w, http.StatusTooManyRequests, s.cfg.Ingest.Produce.RetryAfter, fmt.Sprintf("rate limit of source %s exceeded", mmp))
		return mmp
	}

	body, ok := s.readBody(w, r)
	if !ok {
		return mmp
	}
	raw := event.Raw{
		Method: r.Method, Path: r.URL.Path, Query: rawQuery,
		ContentType: r.Header.Get("Content-Type"), Body: string(body), RemoteIP: ip.String(),
	}
	params := query
	if len(body) > 0 {
		bp, err := postback.BodyParams(raw.ContentType, body)
		if errors.Is(err, postback.ErrUnsupportedContentType) {
			writeError(w, http.StatusUnsupportedMediaType, "body", err.Error()+" (send application/json or application/x-www-form-urlencoded)")
			return mmp
		}
		if err != nil {
			return s.reject(w, mmp, string(kind), postback.CarriedEventID(mmp, kind, query), err, raw)
		}
		// A token sent in a form body too must not be stored either.
		if _, has := bp[tokenParam]; has {
			bp.Del(tokenParam)
			if strings.HasPrefix(raw.ContentType, "application/x-www-form-urlencoded") {
				raw.Body = withoutParam(raw.Body, tokenParam)
			}
		}
		params = postback.MergeParams(query, bp)
	}
	parsed, err := postback.Parse(&postback.Request{MMP: mmp, Kind: kind, Params: params, Raw: raw, ReceivedAt: s.now()})
	if err != nil {
		return s.reject(w, mmp, string(kind), postback.CarriedEventID(mmp, kind, params), err, raw)
	}

	var (
		pb    *event.Postback
		value any
		topic string
	)
	if parsed.Install != nil {
		pb, value, topic = &parsed.Install.Postback, parsed.Install, s.cfg.Topics.InstallsRaw
	} else {
		pb, value, topic = &parsed.Event.Postback, parsed.Event, s.cfg.Topics.EventsRaw
	}
	// An app-scoped token authenticates only postbacks of its own app.
	if !match.any && !match.apps[pb.AppID] {
		s.m.unauthenticated.WithLabelValues(mmp, "token_wrong_app").Inc()
		writeError(w, http.StatusUnauthorized, "token", "token is not valid for this app")
		return mmp
	}
	if err := s.encodeProduce(r.Context(), topic, []byte(pb.JoinKey()), value); err != nil {
		s.log.Warn("postback not acknowledged", "source", mmp, "kind", kind, "event_id", pb.EventID, "err", err)
		s.kafkaUnavailable(w, err)
		return mmp
	}
	s.m.accepted.WithLabelValues(mmp, string(kind)).Inc()
	writeJSON(w, http.StatusOK, accepted{Status: "accepted", EventID: pb.EventID})
	return mmp
}

// reject keeps an authenticated but invalid postback on the rejected topic
// and answers 400 naming the field; if Kafka cannot take the rejection the
// answer is 503, so the MMP retries and nothing is lost.
func (s *Server) reject(w http.ResponseWriter, mmp, kind, eventID string, cause error, raw event.Raw) string {
	field, problem := "", cause.Error()
	var fe *postback.FieldError
	if errors.As(cause, &fe) {
		field, problem = fe.Field, fe.Problem
	}
	rej := event.Rejected{Source: mmp, Kind: kind, ReceivedAt: s.now(), Field: field, Reason: problem, EventID: eventID, Raw: raw}
	if err := s.encodeProduce(s.life, s.cfg.Topics.Rejected, []byte(mmp), rej); err != nil {
		s.log.Warn("rejected postback not recorded", "source", mmp, "field", field, "err", err)
		s.kafkaUnavailable(w, err)
		return mmp
	}
	s.m.rejected.WithLabelValues(mmp, field).Inc()
	writeError(w, http.StatusBadRequest, field, problem)
	return mmp
}

// withoutParam returns the raw query string with every name=value pair
// named name removed, the rest byte for byte as the sender wrote it: the
// stored request stays the original, minus the secret.
func withoutParam(raw, name string) string {
	if !strings.Contains(raw, name) && !strings.Contains(raw, "%") {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// readBody reads a request's body up to http.max_body_bytes; on failure it
// has answered (413 past the bound, 400 otherwise) and ok is false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.HTTP.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("body exceeds %d bytes", s.cfg.HTTP.MaxBodyBytes))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "body", "reading body: "+err.Error())
		return nil, false
	}
	return body, true
}
