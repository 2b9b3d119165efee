package traffic

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// Outcome is what happened to one request of the plan when it was played.
type Outcome struct {
	Seq int `json:"seq"`
	// Status is the final answer to the request: after 503s and transport
	// errors it is retried, as MMPs do; 0 when it never got one.
	Status int `json:"status"`
	// Codes counts every answer by status code, including the MMP's
	// re-sends of a postback that was already accepted.
	Codes map[int]int `json:"codes"`
	// ID is the click id (clicks) or event id (postbacks) of the accepted
	// answer.
	ID string `json:"id,omitempty"`
	// At is when the accepted answer came (touches: about their record
	// time); InstallTime and EventTime what the postback reported.
	At          time.Time `json:"at"`
	InstallTime time.Time `json:"install_time,omitzero"`
	EventTime   time.Time `json:"event_time,omitzero"`
	// Mismatched counts re-sends of an accepted postback answered with
	// another event id (retries must collapse: must be 0).
	Mismatched int `json:"mismatched,omitempty"`
}

// Key is one row of the ground truth: a campaign's day on one app (the
// campaign is empty for organic installs and their events).
type Key struct {
	Day        string `json:"day"`
	AppID      string `json:"app_id"`
	CampaignID string `json:"campaign_id"`
}

// Measures are the counts and sums of one Key, as stats_daily has them.
// Money is exact (millionths).
type Measures struct {
	Impressions, Clicks, InstallPostbacks, Installs, Reinstalls, RejectedInstalls                  uint64
	InstallsClickID, InstallsDeviceID, InstallsProbabilistic, InstallsViewThrough, InstallsOrganic uint64
	FraudInstalls, FraudClickInjection, FraudClickFlooding, FraudMMPRejected                       uint64
	Events                                                                                         uint64
	Spend, Revenue                                                                                 money.Amount
}

// InstallTruth is the expected attribution of one accepted install.
type InstallTruth struct {
	Seq        int             `json:"seq"`
	MMP        string          `json:"mmp"`
	Case       Case            `json:"case"`
	Match      event.MatchType `json:"match_type"`
	CampaignID string          `json:"campaign_id"`
	Reinstall  bool            `json:"reinstall"`
	Rejected   bool            `json:"rejected"`
	Flags      []string        `json:"fraud_flags"`
}

// GroundTruth is what the pipeline must show for a played plan.
type GroundTruth struct {
	Run  string            `json:"run"`
	Apps []string          `json:"apps"`
	Rows map[Key]*Measures `json:"-"`
	Flat []KeyedMeasures   `json:"rows"`
	// Installs by event id; Events counts accepted event postbacks.
	Installs map[string]InstallTruth `json:"installs"`
	// Requests tallies the answers: sent (requests made), by class.
	Requests Tally `json:"requests"`
	// Table rows the pipeline must hold: impressions, clicks, installs,
	// events and rejected (the malformed postbacks answered 400).
	Tables map[string]uint64 `json:"tables"`
	// UnauthDevices are the advertising ids of the unauthenticated
	// requests: no table may hold a row with one.
	UnauthDevices []string `json:"unauthenticated_devices"`
	// MalformedIPs are the device IPs of the malformed postbacks answered
	// 400 (each its own device): their rows in rejected.
	MalformedIPs []string `json:"malformed_ips"`
	// Unexpected lists requests whose answer was not the designed one (a
	// valid postback refused, a malformed one accepted).
	Unexpected []string `json:"unexpected,omitempty"`
}

// KeyedMeasures is a Rows entry for the JSON file, with the ratios an
// analyst reads ("-" where the views have NULL: a zero denominator).
type KeyedMeasures struct {
	Key
	Measures
	CTR  string `json:"ctr"`
	CVR  string `json:"cvr"`
	CPI  string `json:"cpi"`
	ROAS string `json:"roas"`
}

// Tally counts requests and answers.
type Tally struct {
	Sent, OK, Unavailable, Other, NoAnswer uint64
	Malformed400, Unauthenticated401       uint64
	// TouchesUnconfirmed counts clicks and impressions answered 503 or not
	// at all: each may have been written anyway (docs/ingest.md), so the
	// touch tables may hold up to this many rows more than accepted.
	TouchesUnconfirmed uint64
}

// Truth computes the ground truth of plan p from what playing it gave:
// only accepted requests count (a request that never got a 2xx is in no
// expected row; the chaos tally reports it), and days come from the times
// the requests resolved.
func Truth(p *Plan, outs []Outcome) *GroundTruth {
	g := &GroundTruth{Run: p.Options.Run, Rows: map[Key]*Measures{}, Installs: map[string]InstallTruth{}, Tables: map[string]uint64{}}
	for _, a := range p.Apps {
		g.Apps = append(g.Apps, a.ID)
	}
	row := func(t time.Time, app, campaign string) *Measures {
		k := Key{Day: t.UTC().Format(time.DateOnly), AppID: app, CampaignID: campaign}
		m := g.Rows[k]
		if m == nil {
			m = &Measures{}
			g.Rows[k] = m
		}
		return m
	}
	for i, r := range p.Requests {
		o := outs[i]
		g.tally(r, o)
		if !g.designed(r, o) {
			continue
		}
		switch r.Kind {
		case Impression, ClickRedirect, ClickS2S:
			c := r.Touch.Campaign
			m := row(o.At, c.AppID, c.ID)
			if r.Kind == Impression {
				m.Impressions++
				g.Tables["impressions"]++
				if c.CostModel == "CPM" {
					m.Spend += c.Bid / 1000
				}
				continue
			}
			m.Clicks++
			g.Tables["clicks"]++
			if c.CostModel == "CPC" {
				m.Spend += c.Bid
			}
		case Install, RejectedCB:
			e := r.Postback.Expect
			m := row(o.InstallTime, r.Postback.App.ID, e.CampaignID)
			g.Tables["installs"]++
			m.add(e)
			g.Installs[o.ID] = InstallTruth{Seq: r.Seq, MMP: r.Postback.MMP, Case: e.Case, Match: e.Match, CampaignID: e.CampaignID,
				Reinstall: e.Reinstall, Rejected: e.Rejected, Flags: sortedFlags(e.Flags)}
		case InAppEvent:
			e := r.Postback.Expect
			m := row(o.EventTime, r.Postback.App.ID, e.CampaignID)
			g.Tables["events"]++
			m.Events++
			rev, _ := money.Parse(e.RevenueReporting)
			m.Revenue += rev
		}
	}
	for k, m := range g.Rows {
		g.Flat = append(g.Flat, KeyedMeasures{Key: k, Measures: *m, CTR: ratio(m.Clicks, m.Impressions),
			CVR: ratio(m.Installs, m.Clicks), CPI: perInstall(m.Spend, m.Installs), ROAS: roas(m.Revenue, m.Spend)})
	}
	slices.SortFunc(g.Flat, func(a, b KeyedMeasures) int { return compareKeys(a.Key, b.Key) })
	return g
}

func compareKeys(a, b Key) int {
	for _, c := range [][2]string{{a.Day, b.Day}, {a.AppID, b.AppID}, {a.CampaignID, b.CampaignID}} {
		if c[0] != c[1] {
			if c[0] < c[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// add counts an accepted install postback designed as e.
func (m *Measures) add(e *Expect) {
	m.InstallPostbacks++
	switch {
	case e.Rejected:
		m.RejectedInstalls++
	case e.Reinstall:
		m.Reinstalls++
	default:
		m.Installs++
		switch e.Match {
		case event.MatchClickID:
			m.InstallsClickID++
		case event.MatchDeviceID:
			m.InstallsDeviceID++
		case event.MatchProbabilistic:
			m.InstallsProbabilistic++
		case event.MatchViewThrough:
			m.InstallsViewThrough++
		default:
			m.InstallsOrganic++
		}
	}
	if len(e.Flags) > 0 {
		m.FraudInstalls++
	}
	for _, f := range e.Flags {
		switch f {
		case event.FraudClickInjection:
			m.FraudClickInjection++
		case event.FraudClickFlooding:
			m.FraudClickFlooding++
		case event.FraudMMPRejected:
			m.FraudMMPRejected++
		}
	}
	cost, _ := money.Parse(e.Cost)
	m.Spend += cost
}

// tally counts o's answers.
func (g *GroundTruth) tally(r *Request, o Outcome) {
	for code, n := range o.Codes {
		g.Requests.Sent += uint64(n)
		switch {
		case Accepted(code):
			g.Requests.OK += uint64(n)
		case code == http.StatusServiceUnavailable:
			g.Requests.Unavailable += uint64(n)
		case code == 0:
			g.Requests.NoAnswer += uint64(n)
		default:
			g.Requests.Other += uint64(n)
		}
		if r.Touch != nil && (code == 0 || code == http.StatusServiceUnavailable) {
			g.Requests.TouchesUnconfirmed += uint64(n)
		}
	}
	switch {
	case r.Fault == Malformed && o.Status == http.StatusBadRequest:
		g.Requests.Malformed400++
		g.Tables["rejected"]++
		g.MalformedIPs = append(g.MalformedIPs, r.Postback.Device.IP)
	case r.Fault == Unauthenticated && o.Status == http.StatusUnauthorized:
		g.Requests.Unauthenticated401++
		d := r.Postback.Device
		g.UnauthDevices = append(g.UnauthDevices, d.IDFA+d.GAID)
	}
}

// designed reports whether o's final answer is the one r was designed to
// get, recording it in Unexpected when not.
func (g *GroundTruth) designed(r *Request, o Outcome) bool {
	want := "2xx"
	ok := Accepted(o.Status)
	switch r.Fault {
	case Malformed:
		want, ok = "400", o.Status == http.StatusBadRequest
	case Unauthenticated:
		want, ok = "401", o.Status == http.StatusUnauthorized
	}
	if !ok {
		g.Unexpected = append(g.Unexpected, fmt.Sprintf("request %d (%s %s): answered %d, want %s", r.Seq, r.Kind, r.Fault, o.Status, want))
	}
	if o.Mismatched > 0 {
		g.Unexpected = append(g.Unexpected, fmt.Sprintf("request %d (%s): %d re-sends answered with another event id than %s", r.Seq, r.Kind, o.Mismatched, o.ID))
	}
	return ok && r.Fault == NoFault
}

// Accepted reports whether ingest took a request answered code: 2xx, or a
// click's 302 to its tracking link.
func Accepted(code int) bool {
	return code/100 == 2 || code == http.StatusFound
}

// ReadTruth decodes a ground truth written as JSON (postbackctl simulate
// --truth), rebuilding its rows.
func ReadTruth(b []byte) (*GroundTruth, error) {
	var g GroundTruth
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("ground truth: %w", err)
	}
	g.Rows = make(map[Key]*Measures, len(g.Flat))
	for _, km := range g.Flat {
		m := km.Measures
		g.Rows[km.Key] = &m
	}
	return &g, nil
}
