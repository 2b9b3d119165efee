package ingest

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/postback"
)

// pixel is a transparent 1x1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// touchParams are the query parameters a tracking link may pass on clicks
// and impressions; they become macros of the MMP tracking link too. sub1 to
// sub5 are the publisher's own ids (event.PublisherSubs).
var touchParams = []string{"site_id", "sub_site_id", "creative_id", "adset_id", "sub1", "sub2", "sub3", "sub4", "sub5"}

// buildTouch validates the query of a click or impression and returns the
// touch for campaign c. s2s takes the device IP and UA from the query.
func (s *Server) buildTouch(r *http.Request, c event.Campaign, q url.Values, click, s2s bool) (event.Touch, string, error) {
	t := event.Touch{
		Time: s.now(), AppID: c.AppID, Platform: c.Platform, MediaSource: c.MediaSource,
		Placement: event.Placement{CampaignID: c.ID, AdsetID: q.Get("adset_id"), CreativeID: q.Get("creative_id"),
			SiteID: q.Get("site_id"), SubSiteID: q.Get("sub_site_id")},
		PublisherSubs: event.PublisherSubs{Sub1: q.Get("sub1"), Sub2: q.Get("sub2"), Sub3: q.Get("sub3"), Sub4: q.Get("sub4"), Sub5: q.Get("sub5")},
		Cost:          campaign.TouchCost(c, click), Currency: c.Currency,
	}
	var err error
	if v := q.Get("idfa"); v != "" {
		if t.IDFA, err = postback.NormalizeAdID(v); err != nil {
			return t, "idfa", err
		}
	}
	if v := q.Get("gaid"); v != "" {
		if t.GAID, err = postback.NormalizeAdID(v); err != nil {
			return t, "gaid", err
		}
	}
	if v := q.Get("country"); v != "" {
		if t.Country, err = postback.NormalizeCountry(v); err != nil {
			return t, "country", err
		}
	}
	if s2s {
		t.IP, t.UA = q.Get("ip"), q.Get("ua")
		if t.IP == "" {
			return t, "ip", fmt.Errorf("server-to-server touches must pass the device ip")
		}
		if _, err := parseIP(t.IP); err != nil {
			return t, "ip", err
		}
	} else {
		t.IP, t.UA = clientIP(r, s.trusted).String(), r.UserAgent()
	}
	if err := postback.CheckText(t.UA); err != nil {
		return t, "ua", err
	}
	if t.Platform == event.PlatformUnknown {
		t.Platform = postback.InferPlatform(t.Device, t.AppID)
	}
	for _, p := range touchParams {
		v := q.Get(p)
		if len(v) > 256 {
			return t, p, fmt.Errorf("longer than 256 bytes")
		}
		if err := postback.CheckIdentifier(v); err != nil {
			return t, p, err
		}
	}
	return t, "", nil
}

// maxIdempotencyKey bounds an idempotency key (Stripe's bound too).
const maxIdempotencyKey = 255

// idempotencyKey returns the client's idempotency key: the Idempotency-Key
// header (its value may be quoted, as a structured-field string) or the
// idempotency_key parameter; both may be sent if they agree. "" when none.
func idempotencyKey(r *http.Request, q url.Values) (string, error) {
	h, p := r.Header.Get("Idempotency-Key"), q.Get("idempotency_key")
	if len(h) >= 2 && h[0] == '"' && h[len(h)-1] == '"' {
		h = h[1 : len(h)-1]
	}
	key := p
	switch {
	case h != "" && p != "" && h != p:
		return "", fmt.Errorf("the Idempotency-Key header and the idempotency_key parameter differ")
	case h != "":
		key = h
	case p == "" && (r.Header.Get("Idempotency-Key") != "" || q.Has("idempotency_key")):
		return "", fmt.Errorf("empty")
	}
	if len(key) > maxIdempotencyKey {
		return "", fmt.Errorf("longer than %d bytes", maxIdempotencyKey)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("must be printable ASCII without spaces (byte 0x%02x at offset %d)", c, i)
		}
	}
	return key, nil
}

// touchID is the id of a click or impression: derived from the client's
// idempotency key when it sent one (the same request retried gets the same
// id), else a fresh UUIDv7.
func touchID(key string, derive func(campaignID, key string) string, campaignID string) (string, error) {
	if key != "" {
		return derive(campaignID, key), nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// loadingRetryAfter is the Retry-After of the 503 sent while the campaign
// registry loads: the initial load takes well under a second.
const loadingRetryAfter = time.Second

func (s *Server) touchCampaign(w http.ResponseWriter, r *http.Request) (event.Campaign, bool) {
	id := r.PathValue("campaign_id")
	if !s.reg.Loaded() {
		// A campaign missing now may be further down the topic: "unknown"
		// would be a lie, and a 404 is not retried. An existing one may be
		// about to change (bid, tracking link), so none is served yet.
		writeRetry(w, http.StatusServiceUnavailable, loadingRetryAfter, "campaign registry still loading, retry later")
		return event.Campaign{}, false
	}
	c, ok := s.reg.Get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "campaign_id", fmt.Sprintf("unknown campaign %q", id))
		return c, false
	}
	if !s.touches.take(s.now()) {
		writeRetry(w, http.StatusTooManyRequests, s.cfg.Ingest.Produce.RetryAfter, "touch rate limit exceeded")
		return c, false
	}
	return c, true
}

func (s *Server) handleClick(w http.ResponseWriter, r *http.Request) string {
	c, ok := s.touchCampaign(w, r)
	if !ok {
		return "click"
	}
	q := r.URL.Query()
	s2s := q.Get("s2s") == "1" || q.Get("s2s") == "true"
	t, field, err := s.buildTouch(r, c, q, true, s2s)
	if err != nil {
		writeError(w, http.StatusBadRequest, field, err.Error())
		return "click"
	}
	key, err := idempotencyKey(r, q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "idempotency_key", err.Error())
		return "click"
	}
	id, err := touchID(key, event.KeyedClickID, c.ID)
	if err != nil {
		writeRetry(w, http.StatusServiceUnavailable, s.cfg.Ingest.Produce.RetryAfter, "minting click id failed")
		return "click"
	}
	click := event.Click{ClickID: id, S2S: s2s, Touch: t}
	if err := s.encodeProduce(r.Context(), s.cfg.Topics.Clicks, []byte(click.ClickID), click); err != nil {
		s.kafkaUnavailable(w, err)
		return "click"
	}
	s.m.accepted.WithLabelValues("click", "click").Inc()
	if s2s || c.TrackingLink == "" {
		writeJSON(w, http.StatusOK, clickAnswer{Status: "accepted", ClickID: click.ClickID})
		return "click"
	}
	vals := map[string]string{
		"click_id": click.ClickID, "campaign_id": c.ID, "app_id": c.AppID, "media_source": c.MediaSource,
		"site_id": t.SiteID, "sub_site_id": t.SubSiteID, "creative_id": t.CreativeID, "adset_id": t.AdsetID,
		"idfa": t.IDFA, "gaid": t.GAID, "ip": t.IP, "ua": t.UA, "country": t.Country,
		"sub1": t.Sub1, "sub2": t.Sub2, "sub3": t.Sub3, "sub4": t.Sub4, "sub5": t.Sub5,
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, campaign.FillLink(c.TrackingLink, vals, c.MMP), http.StatusFound)
	return "click"
}

func (s *Server) handleImpression(w http.ResponseWriter, r *http.Request) string {
	c, ok := s.touchCampaign(w, r)
	if !ok {
		return "impression"
	}
	q := r.URL.Query()
	s2s := q.Get("s2s") == "1" || q.Get("s2s") == "true"
	t, field, err := s.buildTouch(r, c, q, false, s2s)
	if err != nil {
		writeError(w, http.StatusBadRequest, field, err.Error())
		return "impression"
	}
	key, err := idempotencyKey(r, q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "idempotency_key", err.Error())
		return "impression"
	}
	id, err := touchID(key, event.KeyedImpressionID, c.ID)
	if err != nil {
		writeRetry(w, http.StatusServiceUnavailable, s.cfg.Ingest.Produce.RetryAfter, "minting impression id failed")
		return "impression"
	}
	imp := event.Impression{ImpressionID: id, Touch: t}
	if err := s.encodeProduce(r.Context(), s.cfg.Topics.Impressions, []byte(imp.ImpressionID), imp); err != nil {
		s.kafkaUnavailable(w, err)
		return "impression"
	}
	s.m.accepted.WithLabelValues("impression", "impression").Inc()
	w.Header().Set("Cache-Control", "no-store")
	if q.Get("pixel") == "1" {
		w.Header().Set("Content-Type", "image/gif")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(pixel)
		return "impression"
	}
	w.WriteHeader(http.StatusNoContent)
	return "impression"
}
