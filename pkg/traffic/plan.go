package traffic

import (
	"time"

	"github.com/adtrack/postback/pkg/event"
)

// App is a simulated app, measured by one MMP.
type App struct {
	ID       string // App Store id (id + digits) or package name
	Platform event.Platform
	MMP      string
}

// Campaign is a simulated campaign, registered through the campaign
// registry like any other.
type Campaign struct {
	event.Campaign
	// ClickIDParam is the tracking-link parameter our {click_id} fills:
	// where a browser click's redirect carries the id.
	ClickIDParam string
}

// Kind is what a request is.
type Kind string

// The kinds of request a plan sends.
const (
	Impression    Kind = "impression"
	ClickRedirect Kind = "click"     // a browser click: 302 to the tracking link
	ClickS2S      Kind = "click_s2s" // a server-to-server click: JSON with the click id
	Install       Kind = "install"
	InAppEvent    Kind = "event"
	RejectedCB    Kind = "rejected" // the MMP's rejected-install callback
)

// Fault is what is wrong with a request on purpose.
type Fault string

// The faults a plan injects.
const (
	NoFault         Fault = ""
	Malformed       Fault = "malformed"       // answered 400, kept in rejected
	Unauthenticated Fault = "unauthenticated" // answered 401, stored nowhere
)

// Device is a simulated user's device.
type Device struct {
	IDFA, GAID      string // advertising id (empty: limited ad tracking)
	IDFV, AndroidID string // per-install vendor id
	IP, UA, Country string
	MMPDeviceID     string // the MMP's own device id (appsflyer_id, adid, kochava_device_id, ...)
}

// Request is one request of the plan. Touch requests carry a Touch;
// postbacks a Postback.
type Request struct {
	Seq   int           // index in Plan.Requests
	At    time.Duration // planned send time, from the start of the run
	Kind  Kind
	Fault Fault
	// After is the Seq of the request whose answer this one needs (the
	// click whose id or time it carries, the install an event follows),
	// or -1. A request is never sent before it.
	After int
	// Sends is how often the MMP sends this postback (its retries of one
	// postback, each a separate request with the same content); 1 for
	// touches.
	Sends int

	Touch    *Touch
	Postback *Postback
	// Warmup marks the first impression of each campaign, played before the
	// clock starts: ingest learns campaigns from Kafka, so until it has, it
	// answers 404 (or 503), and these are retried until it knows them.
	Warmup bool
}

// Touch is an impression or click.
type Touch struct {
	Campaign                               *Campaign
	SiteID, SubSiteID, CreativeID, AdsetID string
	Device                                 Device
	// WithAdID: the touch carries the device's advertising id.
	WithAdID bool
}

// Postback is an install, event or rejected-install postback as the MMP
// knows it. Times are resolved at send time (see Resolved).
type Postback struct {
	MMP  string
	App  *App
	Kind Kind
	// Device ids the MMP reports; ClickFrom is the Seq of the click whose id
	// the MMP passes back (-1: none).
	Device    Device
	WithAdID  bool
	WithIPUA  bool
	ClickFrom int
	// CTIT: the install time is the answer time of request After plus
	// CTIT (or, with no touch, the send time minus a delay of the MMP).
	CTIT time.Duration
	// Event: name as the MMP spells it, revenue and currency ("" none);
	// EventOffset after the install time.
	EventName, Revenue, Currency string
	EventOffset                  time.Duration
	// MMPEventID is the MMP's own id, for the MMPs that send one.
	MMPEventID   string
	RejectReason string
	// Campaign as the MMP reports it (it knows our campaign from the
	// tracking link), nil when organic.
	Campaign *Campaign
	// Expect is what attribution must make of it (installs and events).
	Expect *Expect
	// BadField is the field broken on purpose (Malformed).
	BadField string
}

// Expect is the designed outcome of an install or event postback.
type Expect struct {
	Case       Case
	Match      event.MatchType
	CampaignID string
	Reinstall  bool
	Rejected   bool
	Flags      []string // sorted
	// Cost of the install in the campaign's currency ("" none).
	Cost string
	// RevenueReporting of an event ("" none).
	RevenueReporting string
}

// Case names an install's journey.
type Case string

// The install journeys. Each is designed so that exactly one rule applies.
const (
	CaseClickID       Case = "click_id"      // the MMP passes our click id back
	CaseEarly         Case = "early"         // as click_id, the postback right after the click
	CaseDeviceID      Case = "device_id"     // no click id; the click carried the IDFA/GAID
	CaseProbabilistic Case = "probabilistic" // no ad id anywhere; IP + UA of an S2S click
	CaseViewThrough   Case = "view_through"  // an impression with the ad id, no click
	CaseOrganic       Case = "organic"       // no touch at all
	CaseInjected      Case = "injected"      // click id, CTIT under 10 s: click_injection
	CaseFlood         Case = "flood"         // more clicks than flood_clicks: click_flooding
	CaseRejected      Case = "rejected"      // the MMP's rejected-install callback
	CaseReinstall     Case = "reinstall"     // the device installed before: device id match, no cost
	CaseEvent         Case = "event"         // an in-app event of an install
)

// Plan is a generated day: what to register and what to send.
type Plan struct {
	Options   Options
	Apps      []*App
	Campaigns []*Campaign
	Requests  []*Request
}

// Resolved is what a postback's rendering needs from earlier answers.
type Resolved struct {
	ClickID     string    // the id of request ClickFrom's click
	InstallTime time.Time // install time (events: of their install)
	ClickTime   time.Time // the touch's answer time, zero without one
	EventTime   time.Time
}
