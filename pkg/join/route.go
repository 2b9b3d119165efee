package join

import (
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// Routing between the stages: which repartition topic a touch or install
// goes to next, keyed by what the next stage looks it up by, and the
// admission step every raw install and event passes first.

// admit decodes a raw install or event into v (whose postback is pb) and
// reports whether to process it: undecodable records and records without
// an event id or app id go to the rejected topic, and an event id already
// seen within the dedup window (an MMP retry) is dropped and counted. An
// admitted record's event id is marked seen.
func (j *Joiner) admit(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), seen tindex, kind string, v any, pb *event.Postback) (bool, error) {
	if err := json.Unmarshal(rec.Value, v); err != nil {
		j.reject(rec, kind, "undecodable "+kind+": "+err.Error(), emit)
		return false, nil
	}
	if pb.EventID == "" || pb.AppID == "" {
		j.reject(rec, kind, kind+" lacks event_id or app_id", emit)
		return false, nil
	}
	id := []byte(pb.EventID)
	if _, dup, err := seen.get(b, id); err != nil || dup {
		if dup {
			j.m.duplicates.WithLabelValues(kind).Inc()
		}
		return false, err
	}
	seen.put(b, id, pb.ReceivedAt, nil)
	return true, nil
}

// routeTouch sends a click or impression (its original bytes behind a tag)
// to the stages that look touches up by device and by IP + UA.
func (j *Joiner) routeTouch(tag byte, app string, d *event.Device, rec *kgo.Record, emit func(*kgo.Record)) {
	val := func() []byte { return append([]byte{tag}, rec.Value...) }
	if ad := d.AdID(); ad != "" {
		emit(&kgo.Record{Topic: j.byDevice, Key: joinKey(app, ad), Value: val(), Timestamp: rec.Timestamp})
	}
	if tag == tagClick && d.IP != "" && d.UA != "" {
		emit(&kgo.Record{Topic: j.byIPUA, Key: joinKey(app, d.IP, d.UA), Value: val(), Timestamp: rec.Timestamp})
	}
}

// deviceKey is the id reinstalls are tracked by: the advertising id, else
// the vendor or Android id.
func deviceKey(in *event.Install) string {
	if ad := in.AdID(); ad != "" {
		return ad
	}
	if in.IDFV != "" {
		return in.IDFV
	}
	return in.AndroidID
}

// toDevice forwards an install to the device stage, or straight to the
// IP + UA stage when it has no device id at all.
func (j *Joiner) toDevice(p *pending, ts time.Time, emit func(*kgo.Record)) error {
	in := &p.Install
	dk := deviceKey(in)
	if dk == "" {
		return j.toIPUA(p, ts, emit)
	}
	r, err := out(j.byDevice, joinKey(in.AppID, dk), tagInstall, p, ts)
	if err != nil {
		return err
	}
	emit(r)
	return nil
}

// toIPUA forwards an install to the IP + UA stage, keyed like the clicks it
// must meet there; without an IP and UA any partition will do.
func (j *Joiner) toIPUA(p *pending, ts time.Time, emit func(*kgo.Record)) error {
	in := &p.Install
	key := []byte(in.EventID)
	if in.IP != "" && in.UA != "" {
		key = joinKey(in.AppID, in.IP, in.UA)
	}
	r, err := out(j.byIPUA, key, tagInstall, p, ts)
	if err != nil {
		return err
	}
	emit(r)
	return nil
}

// repartitioned is what a by-device or by-ipua record carries: a click, an
// impression, or an install with the candidates found so far.
type repartitioned struct {
	click      *event.Click
	impression *event.Impression
	install    *pending
}

// decodeRepartition decodes a by-device or by-ipua record by its tag; a
// record it cannot decode goes to the rejected topic (ok false).
func (j *Joiner) decodeRepartition(rec *kgo.Record, emit func(*kgo.Record)) (d repartitioned, ok bool) {
	if len(rec.Value) == 0 {
		j.reject(rec, "", "empty repartition record", emit)
		return d, false
	}
	var kind string
	var v any
	switch tag := rec.Value[0]; tag {
	case tagClick:
		d.click = new(event.Click)
		kind, v = "click", d.click
	case tagImpression:
		d.impression = new(event.Impression)
		kind, v = "impression", d.impression
	case tagInstall:
		d.install = new(pending)
		kind, v = "install", d.install
	default:
		j.reject(rec, "", fmt.Sprintf("unknown repartition record tag %q", tag), emit)
		return d, false
	}
	if err := json.Unmarshal(rec.Value[1:], v); err != nil {
		j.reject(rec, kind, "undecodable "+kind+": "+err.Error(), emit)
		return repartitioned{}, false
	}
	return d, true
}
