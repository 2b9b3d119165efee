//go:build integration

package forwarder_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/testenv"
)

// process is one forwarder binary run.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (e *env) startBinary(bin, group string) *process {
	e.t.Helper()
	cmd := exec.Command(bin)
	tc := e.topics
	cmd.Env = append(os.Environ(),
		"POSTBACK_KAFKA_BROKERS="+strings.Join(e.brokers, ","),
		"POSTBACK_KAFKA_TOPICS_INSTALLS_ATTRIBUTED="+tc.InstallsAttributed,
		"POSTBACK_KAFKA_TOPICS_EVENTS_ATTRIBUTED="+tc.EventsAttributed,
		"POSTBACK_KAFKA_TOPICS_ENDPOINTS="+tc.Endpoints,
		"POSTBACK_KAFKA_TOPICS_DELIVERIES="+tc.Deliveries,
		"POSTBACK_KAFKA_TOPICS_FORWARDER_STATE="+tc.ForwarderState,
		"POSTBACK_GROUP="+group,
		"POSTBACK_SESSION_TIMEOUT=6s",
		"POSTBACK_TELEMETRY_ADDR=",
		"POSTBACK_TELEMETRY_LOG_LEVEL=warn",
		"POSTBACK_FORWARDER_KEYS_DIR="+e.keysDir,
		"POSTBACK_FORWARDER_COMMIT_INTERVAL=200ms",
		"POSTBACK_FORWARDER_START_AT=earliest",
		"POSTBACK_FORWARDER_HOST_CONCURRENCY=8",
		"POSTBACK_EGRESS_ALLOW_CIDRS=127.0.0.1/32",
		"POSTBACK_RETRY_INITIAL=200ms",
		"POSTBACK_RETRY_MAX_BACKOFF=1s",
	)
	if os.Getenv("FORWARDER_TEST_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

func (p *process) signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	<-p.exited
}

// TestKillAndRebalance runs two forwarder processes in one group while
// installs flow, SIGKILLs each in turn (a rebalance each time, and a
// restart), SIGTERMs one, and checks that the receiver got every due
// delivery, that repeats are only what was in flight at a kill (first
// received just before it) and carry the same Idempotency-Key and
// request, and that the de-duplicated count equals the due count exactly.
func TestKillAndRebalance(t *testing.T) {
	e := newEnv(t, 4)
	bin := filepath.Join(t.TempDir(), "forwarder")
	if out, err := exec.Command("go", "build", "-o", bin, "../../services/forwarder").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rc := newReceiver(t, func(w http.ResponseWriter, n int) {
		time.Sleep(10 * time.Millisecond) // keeps attempts in flight when a kill comes
		w.WriteHeader(http.StatusOK)
	})
	ep := endpoint("healthy", rc.srv.URL+"/cb?click={click_id}&sub={sub_site_id}")
	ep.Method, ep.Body = "POST", "json"
	egress := localEgress(t)
	if err := forward.Validate(&ep, egress); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := campaigntopic.PublishJSON(ctx, cl, e.topics.Endpoints, "endpoints", []string{ep.ID}, []any{ep}); err != nil {
		t.Fatal(err)
	}

	group := testenv.Name("fwd")
	total := 0
	var kills []time.Time
	produce := func(n int) {
		for i := 0; i < n; i += 50 {
			e.produceInstalls(total, 50)
			total += 50
			time.Sleep(60 * time.Millisecond)
		}
	}
	a := e.startBinary(bin, group)
	b := e.startBinary(bin, group)
	produce(300)
	kills = append(kills, time.Now())
	a.signal(syscall.SIGKILL) // b takes a's partitions after the session timeout
	produce(300)
	a = e.startBinary(bin, group) // a rebalance hands some back
	produce(300)
	kills = append(kills, time.Now())
	b.signal(syscall.SIGKILL)
	produce(300)
	b = e.startBinary(bin, group)
	produce(200)
	a.signal(syscall.SIGTERM) // a clean leave: in-flight finished, offsets committed
	produce(200)

	waitFor(t, 2*time.Minute, "every due delivery", func() bool { return rc.distinct() >= total })
	time.Sleep(3 * time.Second) // late repeats would show now
	b.signal(syscall.SIGTERM)

	if got := rc.distinct(); got != total {
		t.Errorf("receiver de-duplicated %d deliveries, want exactly %d", got, total)
	}
	hits := rc.hits()
	first := map[string]hit{}
	repeats := 0
	for _, h := range hits {
		if h.sigErr != nil {
			t.Errorf("%s: %v", h.id, h.sigErr)
		}
		f, ok := first[h.id]
		if !ok {
			first[h.id] = h
			continue
		}
		repeats++
		if f.body != h.body || f.target != h.target {
			t.Errorf("%s: a repeat with another request: %s %q then %s %q", h.id, f.target, f.body, h.target, h.body)
		}
		// In flight at a kill: first received in the moments before a
		// SIGKILL (sent, its outcome not yet acknowledged by Kafka), and
		// repeated after it. A repeat of anything else (a delivery
		// recorded long before, or around the clean SIGTERM) is a bug.
		inFlight := false
		for _, k := range kills {
			if !f.at.After(k) && k.Sub(f.at) < 3*time.Second && h.at.After(k) {
				inFlight = true
			}
		}
		if !inFlight {
			t.Errorf("%s: received at %s and again at %s, not around a SIGKILL (%v)", h.id,
				f.at.Format(time.StampMilli), h.at.Format(time.StampMilli), kills)
		}
	}
	t.Logf("%d installs, %d requests, %d repeats after %d SIGKILLs", total, len(hits), repeats, len(kills))
}
