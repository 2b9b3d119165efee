package join

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/statestore"
)

// benchRound is how many records one stage batch (one transaction) holds in
// the in-process benchmarks: at line rate a 100 ms commit interval gathers
// thousands per partition.
const benchRound = 1000

// cpuClock measures the process's CPU time (user + system, every thread:
// GC and Pebble's flushes and compactions included), so a rate divided by
// it is per core whatever the machine's other load. Pause and resume it
// with the benchmark timer.
type cpuClock struct {
	b       *testing.B
	spent   time.Duration
	started time.Duration // -1 while paused
}

func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) *cpuClock { return &cpuClock{b: b, started: cpuNow(b)} }

func (c *cpuClock) pause() {
	c.b.StopTimer()
	if c.started >= 0 {
		c.spent += cpuNow(c.b) - c.started
		c.started = -1
	}
}

func (c *cpuClock) resume() {
	if c.started < 0 {
		c.started = cpuNow(c.b)
	}
	c.b.StartTimer()
}

// report stops the clock and adds ops per wall second (unit/s) and per
// CPU second (unit/cpu-s: the per-core figure).
func (c *cpuClock) report(n int, unit string) {
	c.pause()
	c.b.ReportMetric(float64(n)/c.b.Elapsed().Seconds(), unit+"/s")
	if c.spent > 0 {
		c.b.ReportMetric(float64(n)/c.spent.Seconds(), unit+"/cpu-s")
	}
}

// BenchmarkEngine measures the stages in process (Pebble stores, no Kafka),
// each beside its ceiling in the same run:
//
//   - clicks: one op is one click through the click-id, device and IP + UA
//     stages (stored by id, by device and by IP + UA, routed twice), in
//     rounds of benchRound per stage batch; its ceiling, store-only, is the
//     same Pebble writes per click with the keys and values prebuilt, in
//     one store.
//   - installs: one op is one install joined through all four stages
//     (half by click id, half by device id) against 100k stored clicks;
//     its ceiling, decide-only, is the rules alone on the same candidates.
//
// "/cpu-s" figures are per core: ops over the process's CPU time.
func BenchmarkEngine(b *testing.B) {
	const stored = 100_000
	clicks, installs := benchUsers(0, stored, time.Now().Add(-24*time.Hour))
	b.Run("clicks", func(b *testing.B) {
		cfg := testConfig(b)
		cfg.Cache = statestore.NewCache(64 << 20) // the service's default
		defer cfg.Cache.Close()
		e := newEngine(b, cfg)
		stream := func(i int) *kgo.Record { return benchClick(clicks, i) }
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		outs := feedRounds(e, cpu, b.N, stream)
		cpu.report(b.N, "clicks")
		if len(outs) != 0 {
			b.Fatalf("clicks produced outputs: %v", outs)
		}
	})
	b.Run("store-only", func(b *testing.B) {
		s, err := statestore.Open(b.TempDir(), statestore.Options{Cache: statestore.NewCache(64 << 20)})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		for done := 0; done < b.N; {
			cpu.pause()
			n := min(benchRound, b.N-done)
			kv := make([][2][]byte, 0, 3*n)
			for k := range n {
				kv = appendStoreOnly(kv, benchClickValue(clicks, done+k))
			}
			cpu.resume()
			bt := s.NewBatch()
			for _, e := range kv {
				bt.Set(e[0], e[1])
			}
			if err := bt.Commit(); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		cpu.report(b.N, "clicks")
	})
	b.Run("installs", func(b *testing.B) {
		cfg := testConfig(b)
		cfg.Cache = statestore.NewCache(64 << 20)
		defer cfg.Cache.Close()
		e := newEngine(b, cfg)
		for i := 0; i < len(clicks); i += benchRound {
			e.feed(clicks[i:min(i+benchRound, len(clicks))]...)
		}
		e.out = map[string][]*kgo.Record{}
		clear(e.spent)
		// The stored clicks' flushes and compactions are the clicks'
		// cost (measured above): let them finish before timing installs.
		waitIdle(b)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU(b)
		outs := feedRounds(e, cpu, b.N, func(i int) *kgo.Record {
			// Replays of the same installs would be dropped as
			// duplicates: give each op a fresh event id.
			r := *installs[i%stored]
			r.Value = []byte(strings.Replace(string(r.Value), `"event_id":"`, `"event_id":"`+strconv.Itoa(i)+"-", 1))
			return &r
		})
		cpu.report(b.N, "joins")
		if got := outs[cfg.Topics.InstallsAttributed]; got != b.N {
			b.Fatalf("%d installs attributed, want %d", got, b.N)
		}
		for st, d := range e.spent {
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "ns/op-"+st)
		}
	})
	b.Run("decide-only", func(b *testing.B) {
		r := attribution.DefaultRules()
		var c event.Click
		var in event.Install
		if err := json.Unmarshal(clicks[0].Value, &c); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(installs[0].Value, &in); err != nil {
			b.Fatal(err)
		}
		cands := attribution.Candidates{ByClickID: &c, ByDevice: []event.Click{c}, ByIPUA: []event.Click{c}, DeviceClickCount: 1}
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if a := r.Decide(&in, cands, nil, in.ReceivedAt); a.MatchType != event.MatchClickID {
				b.Fatal(a.MatchType)
			}
		}
		cpu.report(b.N, "joins")
	})
}

// waitIdle waits, up to 30 s, until the process uses under 5 % of a core
// (Pebble's background flushes and compactions are done).
func waitIdle(b *testing.B) {
	for range 150 {
		c0 := cpuNow(b)
		time.Sleep(200 * time.Millisecond)
		if cpuNow(b)-c0 < 10*time.Millisecond {
			return
		}
	}
}

// feedRounds feeds n records from next through the engine, benchRound at a
// time, and returns how many records each output topic received. Building
// the records is not timed.
func feedRounds(e *engine, cpu *cpuClock, n int, next func(i int) *kgo.Record) map[string]int {
	outs := map[string]int{}
	for done := 0; done < n; {
		cpu.pause()
		for topic, recs := range e.out {
			outs[topic] += len(recs)
		}
		e.out = map[string][]*kgo.Record{}
		batch := make([]*kgo.Record, min(benchRound, n-done))
		for k := range batch {
			batch[k] = next(done + k)
		}
		cpu.resume()
		e.feed(batch...)
		done += len(batch)
	}
	cpu.pause()
	for topic, recs := range e.out {
		outs[topic] += len(recs)
	}
	return outs
}

// benchClick returns the i-th click of an endless stream: the generated
// clicks again and again, each lap with fresh ids and times 15 minutes
// later (a replay of the same ids would overwrite rather than add).
func benchClick(clicks []*kgo.Record, i int) *kgo.Record {
	var c event.Click
	if err := json.Unmarshal(clicks[i%len(clicks)].Value, &c); err != nil {
		panic(err)
	}
	if lap := i / len(clicks); lap > 0 {
		c.ClickID = fmt.Sprintf("%s-%d", c.ClickID, lap)
		c.Time = c.Time.Add(time.Duration(lap) * 15 * time.Minute)
	}
	return jsonRec(testTopics.Clicks, c.ClickID, c.Time, &c)
}

func benchClickValue(clicks []*kgo.Record, i int) *event.Click {
	var c event.Click
	if err := json.Unmarshal(benchClick(clicks, i).Value, &c); err != nil {
		panic(err)
	}
	return &c
}

// appendStoreOnly appends the writes the stages make for a click, keyed
// and sized as the stages key and size them: by id (UUIDv7: one key), by
// device and by IP + UA (one key each, in generations). The floor the
// stores put under clicks/s.
func appendStoreOnly(kv [][2][]byte, c *event.Click) [][2][]byte {
	withApp, touch := appendTouch(nil, &c.Touch, true), appendTouch(nil, &c.Touch, false)
	byID, ok := v7Key('v', c.ClickID)
	if !ok {
		panic("bench click ids are UUIDv7")
	}
	dev, ipua := gindex{'g', 8 * 24 * time.Hour}, gindex{'g', 24 * time.Hour}
	return append(kv,
		[2][]byte{byID, withApp},
		[2][]byte{dev.key(dev.genOf(c.Time), joinKey(c.AppID, c.IDFA), c.Time, c.ClickID), touch},
		[2][]byte{ipua.key(ipua.genOf(c.Time), ipuaGroup(c.AppID, c.IP, c.UA), c.Time, c.ClickID), touch},
	)
}
