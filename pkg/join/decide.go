package join

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
)

// decide attributes an install with the candidates found for it and
// publishes the result: to installs.attributed.v1, and to the events stage
// once under every id an event may be keyed by (event.Postback.JoinKey),
// with what an event inherits of the install. The device stage calls it
// when a click wins by click id or advertising id, the IP + UA stage
// otherwise.
// ts is the install's stream time, recorded as the attribution time.
func (j *Joiner) decide(r attribution.Rules, in *event.Install, c attribution.Candidates, ts time.Time, emit func(*kgo.Record)) error {
	a := r.Decide(in, c, j.cfg.Campaigns, ts)
	j.m.installs.WithLabelValues(string(a.MatchType)).Inc()
	for _, f := range a.FraudFlags {
		j.m.flags.WithLabelValues(f).Inc()
	}
	if len(a.FraudFlags) > 0 {
		j.m.flagged.Inc()
	}
	o, err := out(j.cfg.Topics.InstallsAttributed, []byte(in.EventID), 0, &a, ts)
	if err != nil {
		return err
	}
	emit(o)

	var v []byte
	for i, id := range [...]string{in.ClickID, in.AdID(), in.IDFV, in.AndroidID} {
		if id == "" || dupBefore(i, id, in) {
			continue
		}
		if v == nil {
			v = appendJoined(nil, &a)
		}
		emit(&kgo.Record{Topic: j.byJoinKey, Key: []byte(id), Value: v, Timestamp: ts})
	}
	return nil
}

// dupBefore reports whether id already appeared before position i of the
// install's join ids (an IDFA equal to the IDFV, say).
func dupBefore(i int, id string, in *event.Install) bool {
	ids := [...]string{in.ClickID, in.AdID(), in.IDFV, in.AndroidID}
	for _, x := range ids[:i] {
		if x == id {
			return true
		}
	}
	return false
}
