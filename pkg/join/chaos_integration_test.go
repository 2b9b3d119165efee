//go:build integration

package join

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/testenv"
)

// restamp returns a copy of rec whose record time and payload times are
// at: what ingest writes when the postback or touch arrives now.
func restamp(t testing.TB, tp Topics, rec *kgo.Record, at time.Time) *kgo.Record {
	var v any
	switch rec.Topic {
	case tp.Clicks:
		var c event.Click
		mustUnmarshal(t, rec.Value, &c)
		c.Time = at
		v = &c
	case tp.Impressions:
		var m event.Impression
		mustUnmarshal(t, rec.Value, &m)
		m.Time = at
		v = &m
	case tp.InstallsRaw:
		var in event.Install
		mustUnmarshal(t, rec.Value, &in)
		in.ReceivedAt, in.InstallTime = at, at
		v = &in
	case tp.EventsRaw:
		var ev event.InAppEvent
		mustUnmarshal(t, rec.Value, &ev)
		ev.ReceivedAt, ev.EventTime = at, at
		v = &ev
	default:
		t.Fatalf("restamp: topic %s", rec.Topic)
	}
	return jsonRec(rec.Topic, string(rec.Key), at, v)
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
}

// liveProducer writes records the way ingest answers them (stamped when
// sent, an idempotent producer that retries until the broker takes them)
// at a steady rate, one at a time, and keeps them in the order sent for the
// engine. One at a time: a producer with many records in flight through an
// outage delivers them late and out of order across partitions, which the
// in-process engine (fed in send order) cannot model; that case is ingest's
// 503 and is covered by the simulator's chaos run (docs/attribution.md,
// Limits).
type liveProducer struct {
	t    testing.TB
	tp   Topics
	cl   *kgo.Client
	rate int // records per second

	mu   sync.Mutex
	sent []*kgo.Record
}

func newLiveProducer(t testing.TB, brokers []string, tp Topics, rate int) *liveProducer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &liveProducer{t: t, tp: tp, cl: cl, rate: rate}
}

// send produces recs at the producer's rate, each acknowledged before the
// next is sent (however long the broker is away).
func (p *liveProducer) send(ctx context.Context, recs []*kgo.Record) error {
	tick := time.NewTicker(time.Second / time.Duration(p.rate))
	defer tick.Stop()
	for _, r := range recs {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		live := restamp(p.t, p.tp, r, time.Now().UTC().Truncate(time.Millisecond))
		p.mu.Lock()
		p.sent = append(p.sent, live)
		p.mu.Unlock()
		if err := p.cl.ProduceSync(ctx, live).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// records returns what was sent, in order.
func (p *liveProducer) records() []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*kgo.Record(nil), p.sent...)
}

// serviceProcess runs the attribution binary and reports if it exits
// before the test stops it.
type serviceProcess struct {
	cmd    *exec.Cmd
	exited chan error
	logs   *syncBuffer
}

// stop kills the service; after a failure it first asks for its
// goroutines (SIGQUIT makes the Go runtime print them and exit), which
// show where a stalled stage waits.
func (sp *serviceProcess) stop(t *testing.T) {
	if t.Failed() && sp.cmd.Process.Signal(syscall.SIGQUIT) == nil {
		select {
		case <-sp.exited:
			return
		case <-time.After(5 * time.Second):
		}
	}
	_ = sp.cmd.Process.Kill()
}

func buildAttribution(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "attribution")
	if out, err := exec.Command("go", "build", "-o", bin, "../../services/attribution").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startService(t *testing.T, bin, conf string, logs *syncBuffer) *serviceProcess {
	cmd := exec.Command(bin, "--config", conf)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sp := &serviceProcess{cmd: cmd, exited: make(chan error, 1), logs: logs}
	go func() { sp.exited <- cmd.Wait() }()
	return sp
}

// serviceConfig writes the attribution service's YAML for cfg's topics.
func serviceConfig(t *testing.T, cfg Config, campaigns, extra string) string {
	tc := cfg.Topics
	conf := filepath.Join(t.TempDir(), "attribution.yaml")
	yaml := fmt.Sprintf(`group: %q
state_dir: %q
kafka:
  brokers: [%q]
  topics: {clicks: %q, impressions: %q, installs_raw: %q, events_raw: %q, installs_attributed: %q, events_attributed: %q, rejected: %q, campaigns: %q}
rates: {reporting_currency: USD, per_unit: {EUR: "1.1", USD: "1"}}
%s
`, cfg.Group, cfg.StateDir, cfg.Kafka.Brokers()[0], tc.Clicks, tc.Impressions, tc.InstallsRaw, tc.EventsRaw, cfg.Topics.InstallsAttributed, tc.EventsAttributed, tc.Rejected, campaigns, extra)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// dumpTransactions logs the broker's view of transactions (for a failed
// test): open and hanging ones, and the producers of every partition with
// an open transaction.
func dumpTransactions(t *testing.T, b *testenv.Broker) {
	for _, args := range [][]string{{"list"}, {"find-hanging", "--broker-id", "1"}} {
		out, err := b.Tool("org.apache.kafka.tools.TransactionsCommand", args...)
		t.Logf("kafka-transactions %v (%v):\n%s", args, err, out)
	}
	if dst := os.Getenv("CHAOS_KEEP_BROKER_STATE"); dst != "" {
		if err := b.CopyState(dst); err != nil {
			t.Logf("copy broker state: %v", err)
		}
	}
}

// readyz fetches the service's /readyz: its status code and body.
func readyz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrokerRestartIntegration runs the attribution service on a broker of
// its own under a live load of touches, installs (with MMP retries) and
// events, and breaks the broker at different moments of it: a restart
// while touches flow, a SIGKILL while an output transaction is open, a
// restart while events flow, and a minute away. The service never exits,
// /readyz names a stuck stage while the broker is away and recovers after,
// and every install and event comes out exactly once, equal to the
// in-process engine's; after a SIGTERM every store equals its changelog.
//
// On failure it logs the service's log and the broker's transactions;
// CHAOS_LOG_LEVEL=debug adds franz-go's lines to the service's log, and
// CHAOS_KEEP_BROKER_STATE=<dir> copies the broker's logs and data there (for
// kafka.sh tool org.apache.kafka.tools.DumpLogSegments).
func TestBrokerRestartIntegration(t *testing.T) {
	b := testenv.StartBroker(t)
	brokers := b.Brokers()
	t.Cleanup(func() {
		if t.Failed() {
			dumpTransactions(t, b)
		}
	})
	cfg, campaigns := integrationConfigOn(t, brokers)

	publishCampaign(t, brokers, campaigns)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := serviceConfig(t, cfg, campaigns, fmt.Sprintf(`telemetry: {addr: %q, log_format: text, log_level: %s}
join: {transaction_timeout: 10s, session_timeout: 6s, stall_timeout: 10s}`, addr, cmp.Or(os.Getenv("CHAOS_LOG_LEVEL"), "info")))
	var logs syncBuffer
	defer func() {
		if t.Failed() || os.Getenv("JOIN_TEST_LOG") != "" {
			t.Logf("service logs:\n%s", logs.String())
		}
	}()
	svc := startService(t, buildAttribution(t), conf, &logs)
	defer svc.stop(t)
	alive := func(when string) {
		t.Helper()
		select {
		case err := <-svc.exited:
			t.Fatalf("attribution exited %s: %v", when, err)
		default:
		}
	}
	waitReady := func(when string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := readyz(addr)
			if code == http.StatusOK {
				return
			}
			alive(when)
			if time.Now().After(deadline) {
				t.Fatalf("not ready %s after %v: %d %s", when, within, code, body)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitReady("at start", 2*time.Minute)

	w := makeWorkload(cfg.Topics, 0, 1500, time.Now())
	all := append(append(append([]*kgo.Record{}, w.touches...), w.installs...), w.events...)
	p := newLiveProducer(t, brokers, cfg.Topics, 75)
	sent := make(chan error, 1)
	go func() { sent <- p.send(t.Context(), all) }()
	waitSent := func(n int) {
		t.Helper()
		for len(p.records()) < n {
			alive(fmt.Sprintf("with %d records sent", len(p.records())))
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A read_uncommitted consumer sees outputs as soon as they are
	// produced, before their transaction commits.
	watch, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(cfg.Topics.InstallsAttributed),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()

	waitSent(600)
	t.Logf("restart while touches flow (%d records sent)", len(p.records()))
	b.Restart()

	waitSent(2000)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		fs := watch.PollFetches(ctx)
		cancel()
		if fs.NumRecords() > 0 {
			break
		}
		alive("waiting for outputs")
		if time.Now().After(deadline) {
			code, body := readyz(addr)
			t.Fatalf("no new outputs for 2 minutes after the first restart; /readyz %d %s", code, body)
		}
	}
	t.Logf("SIGKILL with an output transaction open (%d records sent)", len(p.records()))
	b.Kill()
	b.Start()

	waitSent(3300)
	t.Logf("restart while events flow (%d records sent)", len(p.records()))
	b.Restart()

	waitSent(3800)
	t.Logf("broker away for 60s (%d records sent)", len(p.records()))
	b.Stop()
	time.Sleep(20 * time.Second)
	if code, body := readyz(addr); code != http.StatusServiceUnavailable || !strings.Contains(body, "stage ") {
		t.Errorf("/readyz with the broker away: %d %s; want 503 naming the stuck stages", code, body)
	} else {
		t.Logf("/readyz with the broker away: %s", body)
	}
	time.Sleep(40 * time.Second)
	alive("while the broker was away")
	b.Start()
	if err := <-sent; err != nil {
		t.Fatalf("producer: %v", err)
	}
	waitCount(t, brokers, cfg.Topics.InstallsAttributed, w.uniqueInstalls, 3*time.Minute)
	waitCount(t, brokers, cfg.Topics.EventsAttributed, w.uniqueEvents, 3*time.Minute)
	waitReady("after the broker came back", 2*time.Minute)
	alive("at the end")

	e := newEngine(t, func() Config {
		c := cfg
		c.StateDir = t.TempDir()
		c.Kafka = kafkaconn.Plain([]string{"unused:1"})
		return c
	}())
	e.feed(p.records()...)
	wantI := installOutcomes(t, e.out[cfg.Topics.InstallsAttributed])
	checkMix(t, wantI, 1500)
	compareOutcomes(t, "install", installOutcomes(t, testenv.ReadAll(t, brokers, cfg.Topics.InstallsAttributed)), wantI)
	compareOutcomes(t, "event", eventOutcomes(t, testenv.ReadAll(t, brokers, cfg.Topics.EventsAttributed)), eventOutcomes(t, e.out[cfg.Topics.EventsAttributed]))
	for _, want := range []string{"stage session failed; starting a new one", "restored"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("service log lacks %q", want)
		}
	}
	// SIGTERM: a clean stop. Then every store must hold exactly what its
	// changelog says: state never ahead of (or apart from) what Kafka
	// committed, whatever the faults did.
	_ = svc.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-svc.exited; err != nil {
		t.Errorf("attribution after SIGTERM: %v", err)
	}
	checkStoresMatchChangelogs(t, cfg, 4)
}

// checkStoresMatchChangelogs verifies every stage's store of every
// partition against its changelog (statestore.Verify).
func checkStoresMatchChangelogs(t *testing.T, cfg Config, partitions int) {
	t.Helper()
	j, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range Stages {
		for p := range partitions {
			dir := filepath.Join(cfg.StateDir, st, strconv.Itoa(p))
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			if err := statestore.Verify(ctx, dir, j.Changelog(st), int32(p), kgo.SeedBrokers(cfg.Kafka.Brokers()...)); err != nil {
				t.Errorf("stage %s partition %d: %v", st, p, err)
			}
			cancel()
		}
	}
}
