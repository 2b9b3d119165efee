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
func (j *Joiner) admit(rec *kgo.Record, b *statestore.Batch, emit func(*kgo.Record), seen keyed, now time.Time, kind string, v any, pb *event.Postback) (bool, error) {
	if err := json.Unmarshal(rec.Value, v); err != nil {
		j.reject(rec, kind, "undecodable "+kind+": "+err.Error(), emit)
		return false, nil
	}
	if pb.EventID == "" || pb.AppID == "" {
		j.reject(rec, kind, kind+" lacks event_id or app_id", emit)
		return false, nil
	}
	id := []byte(pb.EventID)
	if _, _, dup, err := seen.get(b, rec.Partition, id, now.Add(-j.cfg.DedupWindow)); err != nil || dup {
		if dup {
			j.m.duplicates.WithLabelValues(kind).Inc()
		}
		return false, err
	}
	seen.put(b, rec.Partition, id, pb.ReceivedAt, nil)
	return true, nil
}

// routeTouch sends a click or impression (tagClickBin or tagImpBin) to the
// stages that look touches up by device and by IP + UA.
func (j *Joiner) routeTouch(tag byte, id string, t *event.Touch, ts time.Time, emit func(*kgo.Record)) {
	ad := t.AdID()
	ipua := tag == tagClickBin && t.IP != "" && t.UA != ""
	if ad == "" && !ipua {
		return
	}
	val := appendTouchValue(tag, id, t)
	if ad != "" {
		emit(&kgo.Record{Topic: j.byDevice, Key: joinKey(t.AppID, ad), Value: val, Timestamp: ts})
	}
	if ipua {
		emit(&kgo.Record{Topic: j.byIPUA, Key: joinKey(t.AppID, t.IP, t.UA), Value: val, Timestamp: ts})
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
	v, err := appendPending(nil, p)
	if err != nil {
		return err
	}
	emit(&kgo.Record{Topic: j.byDevice, Key: joinKey(in.AppID, dk), Value: v, Timestamp: ts})
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
	v, err := appendPending(nil, p)
	if err != nil {
		return err
	}
	emit(&kgo.Record{Topic: j.byIPUA, Key: key, Value: v, Timestamp: ts})
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
// record it cannot decode goes to the rejected topic (ok false). Installs
// come back with only their header decoded (see decodePending).
func (j *Joiner) decodeRepartition(rec *kgo.Record, emit func(*kgo.Record)) (d repartitioned, ok bool) {
	if len(rec.Value) == 0 {
		j.reject(rec, "", "empty repartition record", emit)
		return d, false
	}
	var kind string
	var err error
	switch tag, v := rec.Value[0], rec.Value[1:]; tag {
	case tagClickBin:
		kind, d.click = "click", new(event.Click)
		d.click.ClickID, err = decodeTouchValue(v, &d.click.Touch)
	case tagImpBin:
		kind, d.impression = "impression", new(event.Impression)
		d.impression.ImpressionID, err = decodeTouchValue(v, &d.impression.Touch)
	case tagInstallBin:
		kind = "install"
		d.install, err = decodePending(v)
	// JSON values, written by versions before the binary ones.
	case tagClick:
		kind, d.click = "click", new(event.Click)
		err = json.Unmarshal(v, d.click)
	case tagImpression:
		kind, d.impression = "impression", new(event.Impression)
		err = json.Unmarshal(v, d.impression)
	case tagInstall:
		kind, d.install = "install", new(pending)
		err = json.Unmarshal(v, d.install)
	default:
		j.reject(rec, "", fmt.Sprintf("unknown repartition record tag %q", tag), emit)
		return d, false
	}
	if err != nil {
		j.reject(rec, kind, "undecodable "+kind+": "+err.Error(), emit)
		return repartitioned{}, false
	}
	return d, true
}
