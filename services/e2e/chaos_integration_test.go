//go:build integration

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/chconn"
	"github.com/adtrack/postback/pkg/simulate"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/traffic"
)

// chaosPlan is the shape of a chaos run: CHAOS_LONG=1 (make chaos) is the
// long one, the default the short variant make test runs.
type chaosPlan struct {
	rate           int
	duration       time.Duration
	kills          int           // SIGKILLs of each service
	brokerRestarts int           // restarts of the Kafka broker
	chOutage       time.Duration // ClickHouse stopped for this long
	drainBound     time.Duration // after the last fault, the pipeline must hold everything within this
}

func chaosShape() chaosPlan {
	if os.Getenv("CHAOS_LONG") != "" {
		return chaosPlan{rate: 300, duration: 3 * time.Minute, kills: 3, brokerRestarts: 3, chOutage: time.Minute, drainBound: 5 * time.Minute}
	}
	return chaosPlan{rate: 150, duration: 45 * time.Second, kills: 1, brokerRestarts: 2, chOutage: 20 * time.Second, drainBound: 4 * time.Minute}
}

// fault is one thing the chaos run breaks, at a moment of the simulation.
type fault struct {
	at   time.Duration
	name string
	do   func()
}

// TestChaos runs the pipeline on a Kafka broker and a ClickHouse of its
// own, with two instances of attribution and of the sink, plays a
// simulated day through ingest with `postbackctl simulate`, and meanwhile
// SIGKILLs each service at seeded random moments (restarting it), restarts
// the broker, stops ClickHouse, and finally kills one instance of
// attribution and of the sink for good. Then it waits for the pipeline to
// drain and prints the tally: requests by answer, rows expected and found
// per table, lost and duplicated rows, the time to drain after the last
// fault, and the views against the ground truth. It fails unless every
// row arrives exactly once within the drain bound: nothing lost or
// duplicated, every touch counted once although many were answered 503 and
// retried (with their idempotency keys). Installs attributed otherwise than
// designed are logged with their ids (docs/simulator.md says why they are
// not a failure yet). CHAOS_SEED picks the moments.
func TestChaos(t *testing.T) {
	shape := chaosShape()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("chaos seed %d (CHAOS_SEED=%d repeats the fault moments)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	b := testenv.StartBroker(t)
	ch := testenv.StartClickHouse(t)
	k := fmt.Sprintf("kafka:\n  brokers: [%q]\n", b.Brokers()[0])
	db := testenv.Name("chaos")
	p := startPipeline(t, setup{
		kafka:      map[string]string{"ingest": k, "attribution": k, "sink": k, "postbackctl": k},
		clickhouse: fmt.Sprintf("clickhouse: {addr: [%q], database: %q}\n", ch.Addr, db),
	}, "", "rules: {flood_clicks: 5}\njoin: {transaction_timeout: 10s, session_timeout: 6s, stall_timeout: 10s}\n")
	attr2, _ := p.second(t, "attribution")
	sink2, _ := p.second(t, "sink")

	truthFile := filepath.Join(p.dir, "truth.json")
	run := strings.ReplaceAll(testenv.Name("c"), "_", "")
	sim := exec.Command(filepath.Join(p.bins, "postbackctl"), "simulate", "--run="+run, "--seed=11",
		"--rate="+strconv.Itoa(shape.rate), "--duration="+shape.duration.String(), "--ctr=0.1", "--cvr=0.2",
		"--flood-clicks=5", "--min-ctit=12s", "--max-ctit=20s", "--max-delay=5s", "--reinstall-after=3m",
		"--ingest-config="+filepath.Join(p.dir, "ingest.yaml"), "--truth="+truthFile,
		"--config", filepath.Join(p.dir, "postbackctl.yaml"))
	simLog, err := os.Create(filepath.Join(p.dir, "simulate.log"))
	if err != nil {
		t.Fatal(err)
	}
	sim.Stdout, sim.Stderr = simLog, simLog
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Wait() }()
	defer func() {
		_ = sim.Process.Kill()
		if t.Failed() {
			out, _ := os.ReadFile(simLog.Name())
			t.Logf("simulate log:\n%s", out)
		}
	}()

	// The faults, at seeded moments of the simulation's touch period.
	moment := func() time.Duration {
		return time.Duration(float64(shape.duration) * (0.1 + 0.8*rng.Float64()))
	}
	var faults []fault
	for range shape.kills {
		for _, name := range []string{"ingest", "attribution", "sink"} {
			pr := p.procs[name]
			faults = append(faults, fault{moment(), "SIGKILL " + name, func() {
				pr.kill()
				time.Sleep(time.Second)
				pr.start()
			}})
		}
	}
	for range shape.brokerRestarts {
		faults = append(faults, fault{moment(), "restart the Kafka broker", b.Restart})
	}
	faults = append(faults, fault{moment(), fmt.Sprintf("stop ClickHouse for %v", shape.chOutage), func() {
		ch.Stop()
		time.Sleep(shape.chOutage)
		ch.Start()
	}})
	slices.SortFunc(faults, func(a, b fault) int { return int(a.at - b.at) })
	faults = append(faults, fault{shape.duration, "SIGKILL the second attribution and sink for good", func() {
		attr2.kill()
		sink2.kill()
	}})

	start := time.Now()
	var lastFault time.Time
	for _, f := range faults {
		if d := time.Until(start.Add(f.at)); d > 0 {
			time.Sleep(d)
		}
		t.Logf("%6s  %s", time.Since(start).Truncate(time.Second), f.name)
		f.do()
		lastFault = time.Now()
	}
	select {
	case err := <-simDone:
		if err != nil {
			t.Fatalf("postbackctl simulate: %v", err)
		}
	case <-time.After(15 * time.Minute):
		t.Fatal("postbackctl simulate still running 15 minutes after the last fault")
	}
	tb, err := os.ReadFile(truthFile)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := traffic.ReadTruth(tb)
	if err != nil {
		t.Fatal(err)
	}

	cfg := chconn.Defaults()
	cfg.Addr, cfg.Database = []string{ch.Addr}, db
	conn, err := chconn.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Drained: every row there exactly once. Attribution is given a while
	// longer to settle (grace) before the differences are reported.
	var rep *traffic.Report
	var drained time.Duration
	for {
		found, err := simulate.ReadFound(t.Context(), conn, truth)
		if err != nil {
			t.Fatal(err)
		}
		rep = traffic.Compare(truth, found)
		if rep.Complete() && drained == 0 {
			drained = time.Since(lastFault).Truncate(time.Second)
		}
		if rep.Equal() || (drained > 0 && time.Since(lastFault) > drained+time.Minute) || time.Since(lastFault) > shape.drainBound {
			break
		}
		time.Sleep(2 * time.Second)
	}
	var out strings.Builder
	q := truth.Requests
	fmt.Fprintf(&out, "requests: %d sent, %d accepted, %d answered 503, %d no answer, %d other (%d malformed 400, %d unauthenticated 401); touches unconfirmed (503 or no answer): %d\n",
		q.Sent, q.OK, q.Unavailable, q.NoAnswer, q.Other, q.Malformed400, q.Unauthenticated401, q.TouchesUnconfirmed)
	if drained > 0 {
		fmt.Fprintf(&out, "time to drain after the last fault: %v (bound %v)\n\n", drained, shape.drainBound)
	} else {
		fmt.Fprintf(&out, "NOT DRAINED %v after the last fault\n\n", shape.drainBound)
	}
	rep.Print(&out)
	t.Logf("chaos tally:\n%s", out.String())
	if !rep.Complete() || drained == 0 {
		t.Fatalf("the pipeline lost or duplicated records, or did not drain within %v of the last fault (tally above)", shape.drainBound)
	}
	if len(rep.Unexpected) > 0 {
		t.Fatalf("requests answered otherwise than designed (tally above): %v", rep.Unexpected)
	}
	if !rep.Equal() {
		// Every row is there once, but attribution differs from the
		// design: the faults reordered a device's touches and installs
		// (docs/attribution.md, Limits). Reported, not failed: the issue
		// that owns it is open (docs/simulator.md, Chaos run).
		t.Logf("ATTRIBUTION DIFFERS under faults: %d installs: %v", len(rep.Wrong), rep.Wrong)
	}
	for _, pr := range []*proc{p.procs["ingest"], p.procs["attribution"], p.procs["sink"]} {
		if pr.exitedEarly() {
			t.Errorf("%s exited on its own during the chaos run", pr.name)
		}
	}
}
