package postback

import (
	"errors"
	"strings"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// ErrMissingCurrency is wrapped by the FieldError for an amount that comes
// with no currency from an MMP that documents no default.
var ErrMissingCurrency = errors.New("amount without a currency")

// Parse parses and normalizes one postback. Every error is a *FieldError
// naming the parameter as the MMP sent it, or the canonical parameter of the
// MMP's template when a required one is missing; Parse never panics. A value
// with invalid UTF-8, or with a control character (free text: other than
// tab, CR, LF), is refused before anything else (CheckIdentifier, CheckText).
//
// The event id is the MMP's own id when it sends one ("<mmp>:<id>", or
// "<mmp>:rejected:<id>" on the rejected endpoint), else a hash of the
// normalized identifying fields (see idInput): retries of one postback get
// the same id, whatever their ReceivedAt or parameter order.
func Parse(req *Request) (Parsed, error) {
	if req == nil {
		return Parsed{}, &FieldError{Field: "request", Problem: "is nil"}
	}
	sp := specFor(req.MMP)
	if sp == nil {
		return Parsed{}, &FieldError{Field: "mmp", Problem: "unknown MMP " + quoteShort(req.MMP)}
	}
	if _, ok := ParseKind(string(req.Kind)); !ok {
		return Parsed{}, &FieldError{Field: "kind", Problem: "unknown postback kind " + quoteShort(string(req.Kind)) + " (want install, event or rejected)"}
	}
	if req.ReceivedAt.IsZero() {
		return Parsed{}, &FieldError{Field: "received_at", Problem: "is not set"}
	}
	p := parser{spec: sp, req: req, receivedAt: req.ReceivedAt.UTC()}
	if err := sp.collect(req.Params, &p.fv); err != nil {
		return Parsed{}, err
	}
	if err := p.fv.screen(); err != nil {
		return Parsed{}, err
	}
	return p.parse()
}

// parser turns the collected field values of one request into a record.
type parser struct {
	spec       *spec
	req        *Request
	receivedAt time.Time
	fv         fieldValues
}

func (p *parser) has(f field) bool   { return p.fv[f].set }
func (p *parser) str(f field) string { return p.fv[f].val }
func (p *parser) key(f field) string { return p.fv[f].key }

func (p *parser) parse() (Parsed, error) {
	pb, err := p.postback()
	if err != nil {
		return Parsed{}, err
	}
	marks, err := p.rejectMarks()
	if err != nil {
		return Parsed{}, err
	}
	if p.req.Kind == KindEvent {
		ev, err := p.inAppEvent(pb, marks)
		return Parsed{Event: ev}, err
	}
	in, err := p.install(pb, marks)
	return Parsed{Install: in}, err
}

// postback fills what installs and events share.
func (p *parser) postback() (event.Postback, error) {
	pb := event.Postback{MMP: p.spec.name, ReceivedAt: p.receivedAt, Raw: p.req.Raw}
	var err error
	if !p.has(fAppID) {
		return pb, p.missing(fAppID)
	}
	if pb.AppID, err = NormalizeAppID(p.str(fAppID)); err != nil {
		return pb, fieldErr(p.key(fAppID), err)
	}
	if err = p.device(&pb); err != nil {
		return pb, err
	}
	if p.has(fCountry) {
		if pb.Country, err = NormalizeCountry(p.str(fCountry)); err != nil {
			return pb, fieldErr(p.key(fCountry), err)
		}
	}
	if pb.ClickID, err = p.id(fClickID); err != nil {
		return pb, err
	}
	if pb.CampaignID, err = p.id(fCampaignID); err != nil {
		return pb, err
	}
	pb.MediaSource = p.str(fMediaSource)
	pb.CampaignName = p.str(fCampaignName)
	pb.AdsetID = p.str(fAdsetID)
	pb.CreativeID = p.str(fCreativeID)
	pb.SiteID = p.str(fSiteID)
	pb.SubSiteID = p.str(fSubSiteID)
	if pb.IsRetargeting, err = p.flag(fIsRetargeting); err != nil {
		return pb, err
	}
	if strings.HasPrefix(p.activityKind(), "reattribution") {
		pb.IsRetargeting = true
	}
	pb.MatchType = p.str(fMatchType)
	if pb.MatchType == "" {
		vt, err := p.flag(fViewThrough)
		if err != nil {
			return pb, err
		}
		if vt {
			pb.MatchType = string(event.MatchViewThrough)
		}
	}
	if pb.Cost, err = p.cost(); err != nil {
		return pb, err
	}
	return pb, nil
}

// device fills the device ids and the platform, explicit or inferred.
func (p *parser) device(pb *event.Postback) error {
	var err error
	if p.has(fIDFA) {
		if pb.IDFA, err = NormalizeAdID(p.str(fIDFA)); err != nil {
			return fieldErr(p.key(fIDFA), err)
		}
	}
	if p.has(fGAID) {
		if pb.GAID, err = NormalizeAdID(p.str(fGAID)); err != nil {
			return fieldErr(p.key(fGAID), err)
		}
	}
	pb.IDFV = NormalizeVendorID(p.str(fIDFV))
	pb.AndroidID = p.str(fAndroidID)
	pb.IP = p.str(fIP)
	pb.UA = p.str(fUA)
	if p.has(fPlatform) {
		if pb.Platform, err = NormalizePlatform(p.str(fPlatform)); err != nil {
			return fieldErr(p.key(fPlatform), err)
		}
	} else {
		pb.Platform = InferPlatform(pb.Device, pb.AppID)
	}
	if !p.has(fAdvertisingID) {
		return nil
	}
	// Tenjin's advertising_id is the IDFA or the GAID: the platform says which.
	adID, err := NormalizeAdID(p.str(fAdvertisingID))
	if err != nil {
		return fieldErr(p.key(fAdvertisingID), err)
	}
	switch {
	case adID == "":
	case pb.Platform == event.PlatformIOS && pb.IDFA == "":
		pb.IDFA = adID
	case pb.Platform == event.PlatformAndroid && pb.GAID == "":
		pb.GAID = adID
	case pb.Platform != event.PlatformIOS && pb.Platform != event.PlatformAndroid:
		return &FieldError{Field: p.key(fAdvertisingID), Problem: "cannot tell an IDFA from a GAID: the postback has no iOS or Android platform"}
	}
	return nil
}

// install builds an Install (kinds install and rejected).
func (p *parser) install(pb event.Postback, marks rejectMarks) (*event.Install, error) {
	rec := &installRecord{Install: event.Install{Postback: pb}}
	in := &rec.Install
	var err error
	if in.InstallTime, in.ClickTime, err = p.times(fClickTime, &rec.clickTime, fInstallTime, fActivityTime); err != nil {
		return nil, err
	}
	if p.has(fEventName) {
		// Kochava's "_install", Branch's INSTALL / REINSTALL; anything else
		// means the MMP was pointed at the wrong endpoint.
		name := p.str(fEventName)
		if NormalizeEventName(name) != event.NameInstall {
			return nil, &FieldError{Field: p.key(fEventName), Problem: "event " + quoteShort(name) + " sent to the install endpoint; in-app events go to /event"}
		}
		in.IsReinstall = strings.EqualFold(name, "reinstall")
	}
	reinstall, err := p.flag(fIsReinstall)
	if err != nil {
		return nil, err
	}
	in.IsReinstall = in.IsReinstall || reinstall || strings.HasSuffix(p.activityKind(), "reinstall")
	if p.req.Kind == KindRejected || marks.rejected {
		in.Rejected = true
		if marks.reason == "" {
			return nil, p.missing(fRejectReason)
		}
		in.RejectReason = marks.reason
	}
	if in.EventID, err = p.eventID(&in.Postback, in.InstallTime, "", "", "", 0); err != nil {
		return nil, err
	}
	return in, nil
}

// inAppEvent builds an InAppEvent (kind event).
func (p *parser) inAppEvent(pb event.Postback, marks rejectMarks) (*event.InAppEvent, error) {
	if marks.rejected {
		// A blocked in-app event must not count as revenue; refusing it
		// sends it to the rejected topic with the MMP's reason.
		return nil, &FieldError{Field: marks.field, Problem: "the MMP rejected this in-app event (" + quoteShort(marks.reason) + "); rejected events are not accepted"}
	}
	rec := &eventRecord{InAppEvent: event.InAppEvent{Postback: pb}}
	ev := &rec.InAppEvent
	var err error
	if ev.EventTime, ev.InstallTime, err = p.times(fInstallTime, &rec.installTime, fEventTime, fActivityTime); err != nil {
		return nil, err
	}
	if !p.has(fEventName) {
		return nil, p.missing(fEventName)
	}
	ev.OriginalName = p.str(fEventName)
	ev.Name = NormalizeEventName(ev.OriginalName)
	if ev.Revenue, ev.Currency, err = p.revenue(); err != nil {
		return nil, err
	}
	ev.Value = p.str(fEventValue)
	if ev.EventID, err = p.eventID(&ev.Postback, ev.EventTime, ev.OriginalName, ev.Value, ev.Currency, ev.Revenue); err != nil {
		return nil, err
	}
	return ev, nil
}

// eventID returns the MMP's own id when it sent one, else the hash of the
// normalized identifying fields: pb's ids, the event's name, value and
// revenue, and the MMP's time of the install or event.
func (p *parser) eventID(pb *event.Postback, when time.Time, name, value, currency string, revenue money.Amount) (string, error) {
	if p.has(fEventID) {
		id := p.str(fEventID)
		if len(id) > maxMMPEventID {
			return "", &FieldError{Field: p.key(fEventID), Problem: "longer than 200 bytes", Err: ErrTooLong}
		}
		return mmpEventID(p.spec.name, p.req.Kind, id), nil
	}
	return hashEventID(&idInput{
		mmp: p.spec.name, kind: string(p.req.Kind),
		appID: pb.AppID, clickID: pb.ClickID,
		idfa: pb.IDFA, gaid: pb.GAID, idfv: pb.IDFV, androidID: pb.AndroidID, mmpDev: p.str(fMMPDeviceID),
		name: name, value: value, currency: currency,
		when: when, revenue: revenue,
	}), nil
}

// rejectMarks is what the MMP says about a blocked conversion.
type rejectMarks struct {
	rejected bool
	reason   string // "reason" or "reason:value"
	field    string // the parameter that said so, for errors
}

// rejectMarks reads the MMPs' ways of flagging a rejected conversion:
// AppsFlyer's is_rejected and reject_reason(_value), Adjust's
// rejection_reason and activity_kind=rejected_install.
func (p *parser) rejectMarks() (rejectMarks, error) {
	var m rejectMarks
	m.reason = p.str(fRejectReason)
	if m.reason != "" && p.has(fRejectReasonValue) {
		m.reason += ":" + p.str(fRejectReasonValue)
	}
	explicit, err := p.flag(fIsRejected)
	if err != nil {
		return m, err
	}
	switch {
	case explicit:
		m.rejected, m.field = true, p.key(fIsRejected)
	case strings.HasPrefix(p.activityKind(), "rejected"):
		m.rejected, m.field = true, p.key(fActivityKind)
	case m.reason != "" && !p.has(fIsRejected):
		// A reason alone marks it too, unless is_rejected says otherwise.
		m.rejected, m.field = true, p.key(fRejectReason)
	}
	return m, nil
}

// activityKind is Adjust's {activity_kind}, lower-cased ("" if absent).
func (p *parser) activityKind() string {
	ak := p.str(fActivityKind)
	if hasUpper(ak) {
		ak = strings.ToLower(ak)
	}
	return ak
}

// revenue reads the event's revenue and currency. Cents (Adjust) or units
// need a currency; without one, the MMP's USD revenue (Tenjin, AppsFlyer's
// monetary) is used if present, else it is an error: no default is guessed.
func (p *parser) revenue() (money.Amount, string, error) {
	// A currency that is sent is checked even when the USD revenue is what
	// gets used: a typo'd code points at a misconfigured template.
	if p.has(fCurrency) {
		if _, err := NormalizeCurrency(p.str(fCurrency)); err != nil {
			return 0, "", fieldErr(p.key(fCurrency), err)
		}
	}
	primary, found := fRevenueCents, p.has(fRevenueCents)
	if !found {
		primary, found = fRevenue, p.has(fRevenue)
	}
	if found {
		var amount money.Amount
		var err error
		if primary == fRevenueCents {
			amount, err = ParseCents(p.str(primary))
		} else {
			amount, err = ParseAmount(p.str(primary))
		}
		if err != nil {
			return 0, "", fieldErr(p.key(primary), err)
		}
		if p.has(fCurrency) {
			cur, err := NormalizeCurrency(p.str(fCurrency))
			if err != nil {
				return 0, "", fieldErr(p.key(fCurrency), err)
			}
			return amount, cur, nil
		}
		if !p.has(fRevenueUSD) {
			return 0, "", &FieldError{Field: p.key(primary), Problem: "revenue without a currency (send " + p.spec.missingName(fCurrency) + ")", Err: ErrMissingCurrency}
		}
	}
	if p.has(fRevenueUSD) {
		amount, err := ParseAmount(p.str(fRevenueUSD))
		if err != nil {
			return 0, "", fieldErr(p.key(fRevenueUSD), err)
		}
		return amount, "USD", nil
	}
	return 0, "", nil
}

// cost reads the cost the MMP reports (AppsFlyer af_cost_*, Adjust cost_*,
// Branch ~cost_*); a value needs its currency.
func (p *parser) cost() (*event.Cost, error) {
	if !p.has(fCostValue) {
		return nil, nil
	}
	amount, err := ParseAmount(p.str(fCostValue))
	if err != nil {
		return nil, fieldErr(p.key(fCostValue), err)
	}
	if !p.has(fCostCurrency) {
		return nil, &FieldError{Field: p.key(fCostValue), Problem: "cost without a currency (send " + p.spec.missingName(fCostCurrency) + ")", Err: ErrMissingCurrency}
	}
	cur, err := NormalizeCurrency(p.str(fCostCurrency))
	if err != nil {
		return nil, fieldErr(p.key(fCostCurrency), err)
	}
	model := p.str(fCostModel)
	if model != strings.ToUpper(model) {
		model = strings.ToUpper(model) // "cpi" (Adjust) -> "CPI"
	}
	return &event.Cost{Model: model, Amount: amount, Currency: cur}, nil
}

// id returns an identifier field, refusing values too long to be ours or to
// fit the schemas.
func (p *parser) id(f field) (string, error) {
	v := p.str(f)
	if len(v) > maxIDLen {
		return "", fieldErr(p.key(f), errTooLong)
	}
	return v, nil
}

func (p *parser) flag(f field) (bool, error) {
	if !p.has(f) {
		return false, nil
	}
	b, err := parseBool(p.str(f))
	if err != nil {
		return false, fieldErr(p.key(f), err)
	}
	return b, nil
}

// times reads a record's own time from the first of fs present (none is an
// error naming the first), and its optional second time f into *dst,
// returning dst, or nil when f is absent.
func (p *parser) times(f field, dst *time.Time, fs ...field) (time.Time, *time.Time, error) {
	own, err := p.requiredTime(fs)
	if err != nil || !p.has(f) {
		return own, nil, err
	}
	if *dst, err = p.time(f); err != nil {
		return own, nil, err
	}
	return own, dst, nil
}

func (p *parser) requiredTime(fs []field) (time.Time, error) {
	for _, f := range fs {
		if p.has(f) {
			return p.time(f)
		}
	}
	return time.Time{}, p.missing(fs...)
}

// installRecord and eventRecord allocate a record together with the time
// its pointer field refers to: one allocation instead of two per postback.
// Callers only see the embedded event type.
type installRecord struct {
	event.Install
	clickTime time.Time
}

type eventRecord struct {
	event.InAppEvent
	installTime time.Time
}

func (p *parser) time(f field) (time.Time, error) {
	s := &p.fv[f]
	t, err := ParseTime(s.val, s.unit, p.receivedAt)
	if err != nil {
		return time.Time{}, fieldErr(s.key, err)
	}
	return t, nil
}

// missing reports a required field, naming the parameter the MMP's template
// uses for it.
func (p *parser) missing(fs ...field) *FieldError {
	return &FieldError{
		Field:   p.spec.missingName(fs...),
		Problem: "missing, required in " + string(p.req.Kind) + " postbacks",
		Err:     ErrMissing,
	}
}

// ErrMissing is wrapped by the FieldError for a required parameter that is
// absent (not sent, empty, or an unexpanded macro).
var ErrMissing = errors.New("required parameter missing")
