package ingest

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/skan"
)

// skanSource is the source of SKAN records and rejections (metrics, the
// rejected topic).
const skanSource = "skan"

// skanAnswer is the body of a refused SKAN postback: the reason code
// (invalid_signature, unknown_version, ...) beside the usual error.
type skanAnswer struct {
	Status     string `json:"status,omitempty"`
	PostbackID string `json:"postback_id,omitempty"`
	Error      string `json:"error,omitempty"`
	Field      string `json:"field,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// newSKANVerifier returns nil when no ad network id is configured.
func newSKANVerifier(cfg SKAN) (*skan.Verifier, error) {
	if len(cfg.AdNetworkIDs) == 0 {
		return nil, nil
	}
	return skan.NewVerifier(cfg.Keys(), cfg.AdNetworkIDs)
}

// handleSKAN takes a postback as Apple's devices send it: a JSON body, no
// token (the signature is the authentication). A verified postback goes to
// the skan topic; a malformed one is a 400, an unverifiable one a 401, and
// both are kept on the rejected topic with their reason.
func (s *Server) handleSKAN(w http.ResponseWriter, r *http.Request) string {
	if s.skanv == nil {
		writeError(w, http.StatusNotFound, "", "SKAdNetwork postbacks are not enabled here (set ingest.skan.ad_network_ids)")
		return skanSource
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return skanSource
	}
	raw := event.Raw{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"),
		Body: string(body), RemoteIP: clientIP(r, s.trusted).String()}
	p, err := skan.Parse(body)
	if err == nil {
		err = s.skanv.Verify(p)
	}
	if err != nil {
		return s.rejectSKAN(w, p, err, raw)
	}
	rec := s.skanRecord(p, raw)
	if err := s.encodeProduce(r.Context(), s.cfg.Topics.SKAN, []byte(rec.TransactionID), rec); err != nil {
		s.log.Warn("skan postback not acknowledged", "postback_id", rec.PostbackID, "err", err)
		s.kafkaUnavailable(w, err)
		return skanSource
	}
	s.m.accepted.WithLabelValues(skanSource, rec.Framework).Inc()
	writeJSON(w, http.StatusOK, skanAnswer{Status: "accepted", PostbackID: rec.PostbackID})
	return skanSource
}

// skanRecord is the skan.v1 record of a verified postback, mapped to the
// campaign that declares its ids.
func (s *Server) skanRecord(p *skan.Postback, raw event.Raw) event.SKANPostback {
	rec := event.SKANPostback{
		PostbackID: p.DedupKey(), Framework: string(p.Framework), Version: p.Version, ReceivedAt: s.now(),
		AdNetworkID: p.AdNetworkID, SKANCampaignID: p.CampaignID, SourceIdentifier: p.SourceIdentifier,
		AppID: "id" + strconv.FormatInt(p.AppID, 10), TransactionID: p.TransactionID, SourceAppID: p.SourceAppID,
		SourceDomain: p.SourceDomain, FidelityType: p.FidelityType, ConversionValue: p.ConversionValue,
		CoarseConversionValue: p.CoarseConversionValue, DidWin: p.DidWin == nil || *p.DidWin, CountryCode: p.CountryCode,
		ConversionType: p.ConversionType, ImpressionType: p.ImpressionType, MarketplaceID: p.MarketplaceID,
		AdInteractionType: p.AdInteractionType, KeyID: p.KeyID, Signature: p.Signature, Raw: raw,
	}
	if p.Redownload != nil {
		rec.Redownload = *p.Redownload
	}
	if p.PostbackSequenceIndex != nil {
		rec.PostbackSequenceIndex = *p.PostbackSequenceIndex
	}
	var cid int
	if p.CampaignID != nil && *p.CampaignID <= 100 {
		cid = int(*p.CampaignID)
	}
	c, match := s.reg.FindSKAN(rec.AppID, p.AdNetworkID, cid, p.SourceIdentifier)
	rec.CampaignID, rec.MediaSource, rec.CampaignMatch = c.ID, c.MediaSource, string(match)
	return rec
}

// rejectSKAN keeps a refused postback on the rejected topic (source skan,
// reason starting with the code) and answers 400 or 401; 503 when Kafka
// cannot take the rejection, so the device retries and nothing is lost.
func (s *Server) rejectSKAN(w http.ResponseWriter, p *skan.Postback, cause error, raw event.Raw) string {
	var e *skan.Error
	if !errors.As(cause, &e) {
		e = &skan.Error{Reason: skan.ReasonMalformed, Detail: cause.Error()}
	}
	rej := event.Rejected{Source: skanSource, ReceivedAt: s.now(), Field: e.Field, Reason: e.Reason + ": " + e.Detail, Raw: raw}
	if p != nil {
		rej.Kind, rej.EventID = string(p.Framework), p.DedupKey()
	}
	if err := s.encodeProduce(s.life, s.cfg.Topics.Rejected, []byte(skanSource), rej); err != nil {
		s.log.Warn("rejected skan postback not recorded", "reason", e.Reason, "err", err)
		s.kafkaUnavailable(w, err)
		return skanSource
	}
	s.m.rejected.WithLabelValues(skanSource, e.Reason).Inc()
	code := http.StatusBadRequest
	if e.Unauthorized() {
		code = http.StatusUnauthorized
	}
	writeJSON(w, code, skanAnswer{Error: e.Detail, Field: e.Field, Reason: e.Reason})
	return skanSource
}
