package join

import (
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/event"
)

// wireSamples are binary repartition values as the stages write them: a
// click, an impression, a pending install with every candidate kind, and a
// joined install.
func wireSamples(t testing.TB) [][]byte {
	t.Helper()
	c := event.Click{ClickID: "k1", Touch: event.Touch{Time: base, AppID: "app", MediaSource: "net",
		Placement: event.Placement{CampaignID: "cmp-1", AdsetID: "as", CreativeID: "cr", SiteID: "s", SubSiteID: "ss"}, Currency: "USD",
		Device: event.Device{IDFA: idfa1, IP: "10.0.0.1", UA: ua}}}
	m := event.Impression{ImpressionID: "m1", Touch: c.Touch}
	p := samplePending(t)
	a := event.AttributedInstall{Install: p.Install}
	a.MatchType, a.TouchID, a.CampaignID, a.FraudFlags = event.MatchClickID, "k1", "cmp-1", []string{event.FraudClickInjection}
	tt, ctit := base, int64(60)
	a.TouchTime, a.CTITSeconds, a.Reinstall = &tt, &ctit, true
	pv, err := appendPending(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		appendTouchRecord([]byte{tagClickBin}, c.ClickID, &c.Touch),
		appendTouchRecord([]byte{tagImpBin}, m.ImpressionID, &m.Touch),
		pv,
		appendJoined(nil, &a),
	}
}

func samplePending(t testing.TB) *pending {
	t.Helper()
	in := install("i", min_, iClick("k1"), iIDFA(idfa1), iIPUA("10.0.0.1"))
	p := &pending{raw: in.Value}
	if err := json.Unmarshal(in.Value, &p.Install); err != nil {
		t.Fatal(err)
	}
	p.Install.IDFV, p.Install.IsReinstall = "vendor-1", true
	k := event.Click{ClickID: "k1", Touch: event.Touch{Time: base, AppID: "app", MediaSource: "net", Currency: "USD", Device: event.Device{IDFA: idfa1}}}
	prior := base.Add(-time.Hour)
	p.ByClickID, p.ByDevice, p.Impressions = &k, []event.Click{k, k}, []event.Impression{{ImpressionID: "m1", Touch: k.Touch}}
	p.DeviceClickCount, p.PriorInstall = 7, &prior
	return p
}

// TestPendingRoundTrip: the header carries what the device and IP + UA
// stages read, the candidates come back whole, and decodeInstall restores
// the install from its JSON.
func TestPendingRoundTrip(t *testing.T) {
	p := samplePending(t)
	v, err := appendPending(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if v[0] != tagInstallBin {
		t.Fatalf("tag %q", v[0])
	}
	got, err := decodePending(v[1:])
	if err != nil {
		t.Fatal(err)
	}
	in := &got.Install
	if in.EventID != "i" || in.AppID != "app" || in.IDFA != idfa1 || in.IDFV != "vendor-1" || in.IP != "10.0.0.1" || in.UA != ua || !in.IsReinstall {
		t.Errorf("header = %+v", in)
	}
	if !in.InstallTime.Equal(p.Install.InstallTime) && !in.InstallTime.Equal(p.Install.ReceivedAt) {
		t.Errorf("install time %v", in.InstallTime)
	}
	if !reflect.DeepEqual(got.candidates(), p.candidates()) {
		t.Errorf("candidates = %+v\nwant %+v", got.candidates(), p.candidates())
	}
	if err := got.decodeInstall(); err != nil {
		t.Fatal(err)
	}
	want := p.Install
	want.IDFV, want.IsReinstall = "", false // set on the sample after its JSON was written
	if !reflect.DeepEqual(got.Install, want) {
		t.Errorf("install = %+v\nwant %+v", got.Install, want)
	}
}

// TestJoinedRoundTrip: the joined install keeps every field AttributeEvent
// reads.
func TestJoinedRoundTrip(t *testing.T) {
	v := wireSamples(t)[3]
	a, at, err := decodeJoined(v[1:])
	if err != nil {
		t.Fatal(err)
	}
	if a.EventID != "i" || a.AppID != "app" || a.MatchType != event.MatchClickID || a.TouchID != "k1" || a.CampaignID != "cmp-1" ||
		*a.CTITSeconds != 60 || !a.TouchTime.Equal(base) || !a.Reinstall || len(a.FraudFlags) != 1 || at.IsZero() {
		t.Errorf("joined = %+v at %v", a, at)
	}
}

// FuzzWire: binary values of any bytes decode or error, never panic, and
// what decodes encodes back to the same bytes.
func FuzzWire(f *testing.F) {
	for _, v := range wireSamples(f) {
		f.Add(v)
	}
	f.Add([]byte{tagInstallBin, 0x80})
	f.Fuzz(func(t *testing.T, v []byte) {
		if len(v) == 0 {
			return
		}
		switch v[0] {
		case tagClickBin, tagImpBin:
			var tc event.Touch
			r := wireReader{b: v[1:]}
			id := r.touchRecord(&tc)
			if r.end() != nil {
				return
			}
			var back event.Touch
			r = wireReader{b: appendTouchRecord(nil, id, &tc)}
			if id2 := r.touchRecord(&back); r.end() != nil || id2 != id || back != tc {
				t.Fatalf("touch round trip: %q %+v != %q %+v", id2, back, id, tc)
			}
		case tagInstallBin:
			p, err := decodePending(v[1:])
			if err != nil {
				return
			}
			again, err := appendPending(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			q, err := decodePending(again[1:])
			if err != nil || !reflect.DeepEqual(p.candidates(), q.candidates()) || string(q.raw) != string(p.raw) {
				t.Fatalf("pending round trip: %v", err)
			}
		case tagJoinBin:
			a, _, err := decodeJoined(v[1:])
			if err != nil {
				return
			}
			if _, _, err := decodeJoined(appendJoined(nil, a)[1:]); err != nil {
				t.Fatalf("joined round trip: %v", err)
			}
		}
	})
}
