package join

import (
	"bytes"
	"encoding/hex"
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
		appendTouchValue(tagClickBin, c.ClickID, &c.Touch),
		appendTouchValue(tagImpBin, m.ImpressionID, &m.Touch),
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
			id, err := decodeTouchValue(v[1:], &tc)
			if err != nil {
				return
			}
			var back event.Touch
			if id2, err := decodeTouchValue(appendTouchValue(v[0], id, &tc)[1:], &back); err != nil || id2 != id || back != tc {
				t.Fatalf("touch round trip: %q %+v != %q %+v (%v)", id2, back, id, tc, err)
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

// subs is a full set of publisher sub ids.
var subs = event.PublisherSubs{Sub1: "pub-1", Sub2: "b c", Sub3: "", Sub4: "ü", Sub5: "5"}

// TestSubsRoundTrip: a touch's publisher sub ids survive every value they
// travel or are stored in, and a touch without them costs no byte more.
func TestSubsRoundTrip(t *testing.T) {
	c := event.Click{ClickID: "k1", Touch: event.Touch{Time: base, AppID: "app", MediaSource: "net", Currency: "USD",
		PublisherSubs: subs, Device: event.Device{IDFA: idfa1, IP: "10.0.0.1", UA: ua}}}
	var back event.Touch
	if id, err := decodeTouchValue(appendTouchValue(tagClickBin, c.ClickID, &c.Touch)[1:], &back); err != nil || id != "k1" || back != c.Touch {
		t.Errorf("click value: %q %+v, %v", id, back, err)
	}
	back = event.Touch{}
	if err := decodeTouch(appendTouch(nil, &c.Touch, true), &back, true); err != nil || back.PublisherSubs != subs {
		t.Errorf("stored touch: %+v, %v", back, err)
	}
	plain := c.Touch
	plain.PublisherSubs = event.PublisherSubs{}
	if with, without := len(appendTouch(nil, &c.Touch, false)), len(appendTouch(nil, &plain, false)); with <= without ||
		without != len(appendTouch(nil, &plain, false)) {
		t.Errorf("stored touch: %d bytes with sub ids, %d without", with, without)
	}

	p := samplePending(t)
	p.ByClickID = &c
	p.ByDevice[1].PublisherSubs = subs
	p.Impressions[0].PublisherSubs = subs
	v, err := appendPending(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePending(v[1:])
	if err != nil || !reflect.DeepEqual(got.candidates(), p.candidates()) {
		t.Errorf("pending: %+v, %v\nwant %+v", got.candidates(), err, p.candidates())
	}

	a := event.AttributedInstall{Install: p.Install}
	a.MatchType, a.TouchID = event.MatchDeviceID, "k1"
	a.SetSubs(subs)
	j, _, err := decodeJoined(appendJoined(nil, &a)[1:])
	if err != nil || j.Subs() != subs {
		t.Errorf("joined: %+v, %v", j.Attribution, err)
	}
}

// TestWireBeforeSubs: values the stages wrote before sub ids existed
// (wireSamples and a stored device click, as that version encoded them)
// still decode, with no sub ids; touches without sub ids encode to the same
// bytes as then.
func TestWireBeforeSubs(t *testing.T) {
	old := map[string]string{
		"click":      "6b026b318080f4d4f1c3dfe93103617070036e657405636d702d310261730263720173027373035553442436643961316630632d376231652d346632612d396135392d306338663362326131653031000831302e302e302e31364d6f7a696c6c612f352e3020286950686f6e653b20435055206950686f6e65204f532031375f31206c696b65204d6163204f53205829",
		"impression": "76026d318080f4d4f1c3dfe93103617070036e657405636d702d310261730263720173027373035553442436643961316630632d376231652d346632612d396135392d306338663362326131653031000831302e302e302e31364d6f7a696c6c612f352e3020286950686f6e653b20435055206950686f6e65204f532031375f31206c696b65204d6163204f53205829",
		"pending":    "70016903617070026b312436643961316630632d376231652d346632612d396135392d306338663362326131653031000876656e646f722d31000831302e302e302e31364d6f7a696c6c612f352e3020286950686f6e653b20435055206950686f6e65204f532031375f31206c696b65204d6163204f5320582980e0aed9b0c7dfe93107026b318080f4d4f1c3dfe93103617070036e65740000000000035553442436643961316630632d376231652d346632612d396135392d3063386633623261316530310000008080afc9abf2dde93102026b318080f4d4f1c3dfe93103617070036e65740000000000035553442436643961316630632d376231652d346632612d396135392d306338663362326131653031000000026b318080f4d4f1c3dfe93103617070036e65740000000000035553442436643961316630632d376231652d346632612d396135392d30633866336232613165303100000001026d318080f4d4f1c3dfe93103617070036e65740000000000035553442436643961316630632d376231652d346632612d396135392d306338663362326131653031000000077b226576656e745f6964223a2269222c226d6d70223a2261707073666c796572222c2272656365697665645f6174223a22323032362d31312d32305431323a30313a30305a222c226170705f6964223a22617070222c22636c69636b5f6964223a226b31222c2269646661223a2236643961316630632d376231652d346632612d396135392d306338663362326131653031222c226970223a2231302e302e302e31222c227561223a224d6f7a696c6c612f352e3020286950686f6e653b20435055206950686f6e65204f532031375f31206c696b65204d6163204f53205829222c22726177223a7b226d6574686f64223a22222c2270617468223a22227d2c22696e7374616c6c5f74696d65223a22323032362d31312d32305431323a30313a30305a227d",
		"joined":     "6a0361707080e0aed9b0c7dfe931016908636c69636b5f6964026b3105636d702d310000000000078080f4d4f1c3dfe93178010f636c69636b5f696e6a656374696f6e",
		"stored":     "8080f4d4f1c3dfe931036e6574000000000003555344",
	}
	b := func(name string) []byte {
		v, err := hex.DecodeString(old[name])
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := wireSamples(t)
	for i, name := range []string{"click", "impression", "joined"} {
		if !bytes.Equal(b(name), now[[]int{0, 1, 3}[i]]) {
			t.Errorf("%s without sub ids encodes differently than before", name)
		}
	}
	var tc event.Touch
	if id, err := decodeTouchValue(b("click")[1:], &tc); err != nil || id != "k1" || tc.CampaignID != "cmp-1" || !tc.PublisherSubs.IsZero() {
		t.Errorf("old click: %q %+v, %v", id, tc, err)
	}
	p, err := decodePending(b("pending")[1:])
	if err != nil || !reflect.DeepEqual(p.candidates(), samplePending(t).candidates()) {
		t.Errorf("old pending: %+v, %v", p, err)
	}
	j, _, err := decodeJoined(b("joined")[1:])
	if err != nil || j.TouchID != "k1" || !j.Subs().IsZero() {
		t.Errorf("old joined: %+v, %v", j, err)
	}
	k := samplePending(t).ByDevice[0]
	var st event.Touch
	if err := decodeTouch(b("stored"), &st, false); err != nil || !st.Time.Equal(k.Time) || st.MediaSource != k.MediaSource {
		t.Errorf("old stored touch: %+v, %v", st, err)
	}
	if !bytes.Equal(appendTouch(nil, &k.Touch, false), b("stored")) {
		t.Error("a stored touch without sub ids encodes differently than before")
	}
}
