package join

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
)

// benchUsers builds n users' clicks (each with an IDFA and an IP + UA, so
// it is stored by all three stages) and their installs, half by click id
// and half by device id, in the shape ingest writes them.
func benchUsers(from, n int, start time.Time) (clicks, installs []*kgo.Record) {
	for i := from; i < from+n; i++ {
		ct := start.Add(time.Duration(i) * 8 * time.Millisecond)
		id := uuid7(ct, uint64(i))
		c := event.Click{ClickID: id, Touch: event.Touch{Time: ct, AppID: fmt.Sprintf("com.studio%02d.game", i%50), MediaSource: fmt.Sprint("network", i%8),
			Placement: event.Placement{CampaignID: fmt.Sprintf("cmp-%05d", i%500), SiteID: fmt.Sprintf("site-%06d", i%20000), CreativeID: fmt.Sprintf("cr-%04d", i%2000)},
			Currency:  "USD", Device: event.Device{IDFA: devID(i), IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), UA: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148"}}}
		clicks = append(clicks, jsonRec(testTopics.Clicks, id, ct, &c))
		in := event.Install{Postback: event.Postback{EventID: fmt.Sprintf("%032x", i), MMP: "appsflyer", AppID: c.AppID, ReceivedAt: ct.Add(20 * time.Minute)}}
		in.InstallTime = in.ReceivedAt
		in.IDFA = c.IDFA
		if i%2 == 0 {
			in.ClickID = id
		}
		installs = append(installs, jsonRec(testTopics.InstallsRaw, in.JoinKey(), in.ReceivedAt, &in))
	}
	return clicks, installs
}

// uuid7 is a UUIDv7-shaped id, as ingest mints click ids.
func uuid7(t time.Time, seq uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16|0x7000|seq&0x0fff)
	binary.BigEndian.PutUint64(b[8:], seq*0x9e3779b97f4a7c15&^(3<<62)|(2<<62))
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BenchmarkStoredClickBytes stores 100k clicks through the stages (each
// click lands in stage A by id, B by device and C by IP + UA) and reports
// the sstable bytes per click of each stage's store after compaction,
// index entries included.
func BenchmarkStoredClickBytes(b *testing.B) {
	const n = 100_000
	clicks, _ := benchUsers(0, n, time.Now().Add(-24*time.Hour))
	for b.Loop() {
		e := newEngine(b, testConfig(b))
		for i := 0; i < n; i += 1000 {
			e.feed(clicks[i:min(i+1000, n)]...)
		}
		for _, st := range []string{StageClickID, StageDevice, StageIPUA} {
			s := e.procs[st].s
			if err := s.Compact(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(s.Size())/n, "B/click-"+st)
		}
	}
}

// BenchmarkRSS stores clicks through stages A, B and C (all inside the
// windows: 8 ms apart, 10M clicks span 22 h) and reports the process RSS
// after 1M, every 2M and after 10M (BENCH_RSS_CLICKS overrides the 10M),
// after a GC. State lives on disk; memory is the shared block cache
// (BENCH_RSS_CACHE_MIB, default 64 like the service) and the memtables, so
// RSS should stop growing once the cache is full.
func BenchmarkRSS(b *testing.B) {
	total := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_RSS_CLICKS")); err == nil && v > 0 {
		total = v
	}
	cacheMiB := 64 // the service's default join.cache_size
	if v, err := strconv.Atoi(os.Getenv("BENCH_RSS_CACHE_MIB")); err == nil && v > 0 {
		cacheMiB = v
	}
	for b.Loop() {
		cfg := testConfig(b)
		cfg.Cache = statestore.NewCache(int64(cacheMiB) << 20)
		defer cfg.Cache.Close()
		e := newEngine(b, cfg)
		start := time.Now().Add(-23 * time.Hour)
		var rss1M float64
		const chunk = 10_000
		for done := 0; done < total; done += chunk {
			clicks, _ := benchUsers(done, chunk, start)
			e.feed(clicks...)
			e.out = map[string][]*kgo.Record{}
			switch n := done + chunk; {
			case n == 1_000_000:
				rss1M = rssMiB(b)
				b.ReportMetric(rss1M, "RSS-MiB@1M")
			case n < total && n%2_000_000 == 0:
				b.ReportMetric(rssMiB(b), fmt.Sprintf("RSS-MiB@%dM", n/1_000_000))
			}
		}
		last := rssMiB(b)
		b.ReportMetric(last, fmt.Sprintf("RSS-MiB@%dM", total/1_000_000))
		if rss1M > 0 {
			b.ReportMetric(last/rss1M, "RSS-ratio")
		}
		var disk int64
		for _, p := range e.procs {
			disk += p.s.Size()
		}
		b.ReportMetric(float64(disk)/float64(total), "disk-B/click")
	}
}

func rssMiB(b *testing.B) float64 {
	runtime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatalf("RSS is read from /proc/self/status (Linux only): %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("VmRSS not found")
	return 0
}

// BenchmarkEndToEndKfake measures joins per second through Kafka: the four
// stages as transactional sessions against an in-process kfake broker (4
// partitions), 20k stored clicks, then 20k installs timed from the first
// produce until every attributed install is committed. Broker, producer and
// stages share this machine's cores.
func BenchmarkEndToEndKfake(b *testing.B) {
	const n = 20_000
	for range b.N {
		b.StopTimer()
		cfg := testConfig(b)
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, testTopics.Clicks, testTopics.Impressions, testTopics.InstallsRaw,
			testTopics.EventsRaw, testTopics.InstallsAttributed, testTopics.EventsAttributed, testTopics.Rejected))
		if err != nil {
			b.Fatal(err)
		}
		cfg.Kafka = kafkaconn.Plain(c.ListenAddrs())
		cfg.Cache = statestore.NewCache(64 << 20)
		cfg.MaxPollRecords = 2000 // the service's default
		clicks, installs := benchUsers(0, n, time.Now().Add(-2*time.Hour))
		j, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		stop := runJoiner(b, cfg)
		produce(b, cfg.Kafka.Brokers(), clicks)
		waitCount(b, cfg.Kafka.Brokers(), j.byDevice, n, 5*time.Minute)
		b.StartTimer()
		start := time.Now()
		produce(b, cfg.Kafka.Brokers(), installs)
		waitCount(b, cfg.Kafka.Brokers(), cfg.Topics.InstallsAttributed, n, 5*time.Minute)
		b.ReportMetric(n/time.Since(start).Seconds(), "joins/s")
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		cfg.Cache.Close()
		c.Close()
	}
}
