package join

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
)

// The binary values of the internal repartition topics. Every click passes
// through two of them and every install through three; decoding and
// re-encoding JSON at each hop cost more than the stores. A value is a tag
// byte, then varints and length-prefixed strings in a fixed order: no field
// names. The install itself travels as the JSON ingest wrote, opaque until
// the stage that decides needs all of it. The events stage gets only what
// an event inherits from its install. The JSON tags of codec.go are still
// decoded, so records written by an earlier version drain after an upgrade.
const (
	tagClickBin   byte = 'k' // touchRecord of a click
	tagImpBin     byte = 'v' // touchRecord of an impression (a view)
	tagInstallBin byte = 'p' // pending: install header, candidates, install JSON
	tagJoinBin    byte = 'j' // attributed install for the events stage (appendJoined)
)

var errWire = errors.New("malformed binary value")

// wireReader reads the fields of a binary value (a repartition value or a
// stored touch) in order; the first error sticks and every later read
// returns a zero value.
type wireReader struct {
	b   []byte
	err error
	// s is the rest of the value as one string, copied at the first
	// non-empty str: the strings read are substrings of it, one allocation
	// per value instead of one per field (a value holds dozens).
	s string
}

func (r *wireReader) fail() { r.err, r.b = errWire, nil }

// end reports the first error, or trailing bytes after the last field.
func (r *wireReader) end() error {
	if r.err == nil && len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errWire, len(r.b))
	}
	return r.err
}

func (r *wireReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) str() string {
	l := r.uvarint()
	if uint64(len(r.b)) < l {
		r.fail()
		return ""
	}
	if l == 0 {
		return ""
	}
	if len(r.s) < len(r.b) {
		r.s = string(r.b)
	}
	at := len(r.s) - len(r.b) // r.b is ever a suffix of what s copied
	s := r.s[at : at+int(l)]
	r.b = r.b[l:]
	return s
}

func (r *wireReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// time reads a varint of Unix nanoseconds; 0 is the zero time.
func (r *wireReader) time() time.Time {
	ns := r.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, 0)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

// appendTouchRecord encodes a click or impression as the device and IP + UA
// stages need it: its id, the fields the rules credit (appendTouch's, with
// the app) and the device ids it is keyed by. Its sub ids end the record
// (routeTouch) or follow it (appendPending): see subs.go.
func appendTouchRecord(dst []byte, id string, t *event.Touch) []byte {
	dst = slices.Grow(dst, touchRecordCap+len(t.UA))
	dst = appendString(dst, id)
	dst = binary.AppendVarint(dst, t.Time.UnixNano())
	for _, s := range touchFields(t) {
		dst = appendString(dst, *s)
	}
	for _, s := range [...]string{t.IDFA, t.GAID, t.IP, t.UA} {
		dst = appendString(dst, s)
	}
	return dst
}

// touchRecordCap is room for a touch record without its user agent, so
// appending one usually grows the buffer once.
const touchRecordCap = 256

// touch reads what appendTouch wrote, up to its optional sub ids.
func (r *wireReader) touch(t *event.Touch, withApp bool) {
	t.Time = time.Unix(0, r.varint()).UTC()
	fields := touchFields(t)
	for _, f := range fields[skipApp(withApp):] {
		*f = r.str()
	}
}

// touchRecord reads what appendTouchRecord wrote.
func (r *wireReader) touchRecord(t *event.Touch) (id string) {
	id = r.str()
	r.touch(t, true)
	for _, f := range [...]*string{&t.IDFA, &t.GAID, &t.IP, &t.UA} {
		*f = r.str()
	}
	return id
}

// Flags of a pending install.
const (
	pendReinstall byte = 1 << iota // Install.IsReinstall
	pendByClickID                  // a ByClickID touch record follows
	pendPrior                      // a PriorInstall time follows
	pendSubs                       // every touch record is followed by its sub ids
)

// appendPending encodes an install in flight: the install fields the device
// and IP + UA stages route, look up and skip lookups by, the candidates
// found so far, and the install's JSON (p.raw, or p.Install encoded when
// there is none).
func appendPending(dst []byte, p *pending) ([]byte, error) {
	in := &p.Install
	dst = slices.Grow(dst, len(p.raw)+touchRecordCap*(2+len(p.ByDevice)+len(p.Impressions)))
	dst = append(dst, tagInstallBin)
	for _, s := range [...]string{in.EventID, in.AppID, in.ClickID, in.IDFA, in.GAID, in.IDFV, in.AndroidID, in.IP, in.UA} {
		dst = appendString(dst, s)
	}
	dst = appendTime(dst, attribution.InstallTime(in))
	var flags byte
	if in.IsReinstall {
		flags |= pendReinstall
	}
	if p.ByClickID != nil {
		flags |= pendByClickID
	}
	if p.PriorInstall != nil {
		flags |= pendPrior
	}
	dst = append(dst, flags|pendSubs)
	if p.ByClickID != nil {
		dst = appendTouchRecord(dst, p.ByClickID.ClickID, &p.ByClickID.Touch)
		dst = appendSubs(dst, &p.ByClickID.PublisherSubs)
	}
	if p.PriorInstall != nil {
		dst = appendTime(dst, *p.PriorInstall)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.ByDevice)))
	for i := range p.ByDevice {
		dst = appendTouchRecord(dst, p.ByDevice[i].ClickID, &p.ByDevice[i].Touch)
		dst = appendSubs(dst, &p.ByDevice[i].PublisherSubs)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Impressions)))
	for i := range p.Impressions {
		dst = appendTouchRecord(dst, p.Impressions[i].ImpressionID, &p.Impressions[i].Touch)
		dst = appendSubs(dst, &p.Impressions[i].PublisherSubs)
	}
	dst = binary.AppendUvarint(dst, uint64(p.DeviceClickCount))
	raw := p.raw
	if raw == nil {
		var err error
		if raw, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("encode install %s: %w", in.EventID, err)
		}
	}
	return append(dst, raw...), nil
}

// maxWireCandidates bounds the candidate counts a value may claim, so a
// corrupt count cannot make the decoder allocate without limit.
const maxWireCandidates = 1 << 12

// decodePending decodes the value after its tag. The install holds only the
// header's fields (install time in InstallTime); p.raw is its JSON, for
// [pending.decodeInstall].
func decodePending(b []byte) (*pending, error) {
	r := wireReader{b: b}
	p := new(pending)
	in := &p.Install
	for _, f := range [...]*string{&in.EventID, &in.AppID, &in.ClickID, &in.IDFA, &in.GAID, &in.IDFV, &in.AndroidID, &in.IP, &in.UA} {
		*f = r.str()
	}
	in.InstallTime = r.time()
	flags := r.byte()
	in.IsReinstall = flags&pendReinstall != 0
	subs := func(s *event.PublisherSubs) {
		if flags&pendSubs != 0 {
			r.subs(s)
		}
	}
	if flags&pendByClickID != 0 {
		c := new(event.Click)
		c.ClickID = r.touchRecord(&c.Touch)
		subs(&c.PublisherSubs)
		p.ByClickID = c
	}
	if flags&pendPrior != 0 {
		t := r.time()
		p.PriorInstall = &t
	}
	if n := r.uvarint(); n > maxWireCandidates {
		r.fail()
	} else if n > 0 {
		p.ByDevice = make([]event.Click, n)
		for i := range p.ByDevice {
			p.ByDevice[i].ClickID = r.touchRecord(&p.ByDevice[i].Touch)
			subs(&p.ByDevice[i].PublisherSubs)
		}
	}
	if n := r.uvarint(); n > maxWireCandidates {
		r.fail()
	} else if n > 0 {
		p.Impressions = make([]event.Impression, n)
		for i := range p.Impressions {
			p.Impressions[i].ImpressionID = r.touchRecord(&p.Impressions[i].Touch)
			subs(&p.Impressions[i].PublisherSubs)
		}
	}
	p.DeviceClickCount = int(r.uvarint())
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) == 0 {
		return nil, fmt.Errorf("%w: no install JSON", errWire)
	}
	p.raw = r.b
	return p, nil
}

// decodeInstall replaces the header-only install with the whole one, from
// its JSON. A pending install decoded from JSON (raw nil) is whole already.
func (p *pending) decodeInstall() error {
	if p.raw == nil {
		return nil
	}
	var in event.Install
	if err := json.Unmarshal(p.raw, &in); err != nil {
		return err
	}
	p.Install = in
	return nil
}

// candidates are the candidates the stages found so far.
func (p *pending) candidates() attribution.Candidates {
	return attribution.Candidates{ByClickID: p.ByClickID, ByDevice: p.ByDevice, Impressions: p.Impressions,
		DeviceClickCount: p.DeviceClickCount, PriorInstall: p.PriorInstall}
}

// appendJoined encodes an attributed install for the events stage: what
// [attribution.AttributeEvent] reads of it (app, event id, the attribution
// without cost) and its install time, which the stage orders installs by.
// The events stage stores it as it came, so it stays small on disk and in
// the changelog.
func appendJoined(dst []byte, a *event.AttributedInstall) []byte {
	at := &a.Attribution
	dst = append(dst, tagJoinBin)
	dst = appendString(dst, a.AppID)
	dst = appendTime(dst, attribution.InstallTime(&a.Install))
	for _, s := range [...]string{a.EventID, string(at.MatchType), at.TouchID, at.CampaignID, at.MediaSource, at.AdsetID, at.CreativeID, at.SiteID, at.SubSiteID} {
		dst = appendString(dst, s)
	}
	var flags byte
	if at.Reinstall {
		flags |= joinReinstall
	}
	if at.TouchTime != nil {
		flags |= joinTouchTime
	}
	if at.CTITSeconds != nil {
		flags |= joinCTIT
	}
	dst = append(dst, flags)
	if at.TouchTime != nil {
		dst = appendTime(dst, *at.TouchTime)
	}
	if at.CTITSeconds != nil {
		dst = binary.AppendVarint(dst, *at.CTITSeconds)
	}
	dst = binary.AppendUvarint(dst, uint64(len(at.FraudFlags)))
	for _, f := range at.FraudFlags {
		dst = appendString(dst, f)
	}
	subs := at.Subs()
	return appendOptionalSubs(dst, &subs)
}

// Flags of a joined install.
const (
	joinReinstall byte = 1 << iota
	joinTouchTime
	joinCTIT
)

// decodeJoined decodes the value after its tag into an attributed install
// holding the fields appendJoined keeps, and returns its install time.
func decodeJoined(b []byte) (*event.AttributedInstall, time.Time, error) {
	r := wireReader{b: b}
	a := new(event.AttributedInstall)
	at := &a.Attribution
	a.AppID = r.str()
	installed := r.time()
	var match string
	for _, f := range [...]*string{&a.EventID, &match, &at.TouchID, &at.CampaignID, &at.MediaSource, &at.AdsetID, &at.CreativeID, &at.SiteID, &at.SubSiteID} {
		*f = r.str()
	}
	at.MatchType = event.MatchType(match)
	flags := r.byte()
	at.Reinstall = flags&joinReinstall != 0
	if flags&joinTouchTime != 0 {
		t := r.time()
		at.TouchTime = &t
	}
	if flags&joinCTIT != 0 {
		c := r.varint()
		at.CTITSeconds = &c
	}
	if n := r.uvarint(); n > maxWireCandidates {
		r.fail()
	} else {
		at.FraudFlags = make([]string, n)
		for i := range at.FraudFlags {
			at.FraudFlags[i] = r.str()
		}
	}
	var subs event.PublisherSubs
	r.optionalSubs(&subs)
	at.SetSubs(subs)
	if err := r.end(); err != nil {
		return nil, time.Time{}, err
	}
	a.InstallTime = installed
	return a, installed, nil
}
