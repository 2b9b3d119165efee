package attribution

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/money"
)

// FuzzConvert checks the 128-bit conversion against math/big: same result
// rounded half away from zero, or money.ErrRange exactly when the exact
// result leaves Decimal(18, 6).
func FuzzConvert(f *testing.F) {
	f.Add(int64(19_990_000), uint64(108), uint8(2))
	f.Add(int64(-1), uint64(5), uint8(1))
	f.Add(int64(1<<62), uint64(1<<63), uint8(18))
	f.Fuzz(func(t *testing.T, micros int64, mant uint64, scale uint8) {
		if mant == 0 {
			return
		}
		r := Rate{mant: mant, scale: scale % (maxRateScale + 1)}
		got, err := r.apply(money.FromMicros(micros))

		den := new(big.Int).SetUint64(pow10[r.scale])
		p := new(big.Int).Mul(big.NewInt(micros), new(big.Int).SetUint64(mant))
		abs := new(big.Int).Abs(p)
		q, rem := new(big.Int).QuoRem(abs, den, new(big.Int))
		if rem.Lsh(rem, 1).Cmp(den) >= 0 {
			q.Add(q, big.NewInt(1))
		}
		if q.Cmp(big.NewInt(maxConverted)) >= 0 {
			if !errors.Is(err, money.ErrRange) {
				t.Fatalf("%d * %s = %s, %v; want ErrRange", micros, r, got, err)
			}
			return
		}
		if p.Sign() < 0 {
			q.Neg(q)
		}
		if err != nil || got.Micros() != q.Int64() {
			t.Fatalf("%d * %s = %d, %v; want %s", micros, r, got.Micros(), err, q)
		}
	})
}

// FuzzDecide checks the invariants every decision keeps, whatever the
// touches: a winner is never after the install nor outside its window, its
// CTIT matches its time, flags are never nil, organic has no touch.
func FuzzDecide(f *testing.F) {
	f.Add(int64(3600), int64(-5), int64(86400), int64(90000), int64(8*86400), uint8(3), true, 60)
	f.Add(int64(0), int64(1), int64(-1), int64(86401), int64(604800), uint8(0), false, 0)
	f.Fuzz(func(t *testing.T, kAgo, d1Ago, d2Ago, pAgo, vAgo int64, mask uint8, rejected bool, count int) {
		r := DefaultRules()
		in := install(withClickID("k1"), func(in *event.Install) { in.Rejected = rejected })
		s := func(v int64) time.Duration { return time.Duration(v) * time.Second }
		var c Candidates
		if mask&1 != 0 {
			c.ByClickID = clickp("k1", s(kAgo))
		}
		if mask&2 != 0 {
			c.ByDevice = []event.Click{click("d1", s(d1Ago)), click("d2", s(d2Ago))}
		}
		if mask&4 != 0 {
			c.ByIPUA = []event.Click{click("p1", s(pAgo))}
		}
		if mask&8 != 0 {
			c.Impressions = []event.Impression{impression("v1", s(vAgo))}
		}
		c.DeviceClickCount = count
		got := r.Decide(in, c, camps, decidedAt).Attribution
		if got.FraudFlags == nil {
			t.Fatal("nil flags")
		}
		if got.MatchType == event.MatchOrganic {
			if got.TouchID != "" || got.TouchTime != nil || got.Cost != 0 || got.CostCurrency != "" {
				t.Fatalf("organic with a touch: %+v", got)
			}
			return
		}
		ctit := installAt.Sub(*got.TouchTime)
		window := map[event.MatchType]time.Duration{event.MatchClickID: r.ClickLookback, event.MatchDeviceID: r.ClickLookback,
			event.MatchProbabilistic: r.ProbabilisticWindow, event.MatchViewThrough: r.ViewLookback}[got.MatchType]
		if ctit < 0 || ctit > window || *got.CTITSeconds != int64(ctit/time.Second) || got.CostCurrency == "" {
			t.Fatalf("bad winner: %+v (ctit %v)", got, ctit)
		}
	})
}
