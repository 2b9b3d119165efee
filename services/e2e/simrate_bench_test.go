//go:build integration

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/testenv"
)

// BenchmarkSimulatedRate plays simulated days of SIM_BENCH_DURATION (30 s)
// through the three services on the local broker and ClickHouse at
// doubling rates, from 100 requests/s up to 12,800, until the freshness p99 of
// attributed installs or of clicks (Kafka record time of the input to its
// row's INSERT, from the sink's histogram) passes 2 s or the simulator
// falls behind its planned rate. Per rate it prints the rate reached, both
// p99s and each process's CPU (share of one core; the machine has
// runtime.NumCPU): ingest, attribution, sink, Kafka, ClickHouse and the
// simulator. The figure is the highest rate that kept p99 <= 2 s.
func BenchmarkSimulatedRate(b *testing.B) {
	brokers := testenv.Kafka(b)
	ch := testenv.ClickHouse(b)
	k := fmt.Sprintf("kafka:\n  brokers: [%q]\n", brokers[0])
	p := startPipeline(b, setup{
		kafka:      map[string]string{"ingest": k, "attribution": k, "sink": k, "postbackctl": k},
		clickhouse: fmt.Sprintf("clickhouse: {addr: [%q], database: %q}\n", ch.Addr[0], ch.Database),
	}, "", "")
	d := 30 * time.Second
	if v, err := time.ParseDuration(os.Getenv("SIM_BENCH_DURATION")); err == nil {
		d = v
	}
	best := 0
	fmt.Printf("%8s %10s %14s %14s  %s\n", "planned", "avg/s", "installs p99", "clicks p99", "CPU (share of one core)")
	for rate := 100; rate <= 12800; rate *= 2 {
		before := map[string]histogram{"installs": p.freshness(b, "installs"), "clicks": p.freshness(b, "clicks")}
		cpu0, t0 := p.cpu(), time.Now()
		sim := exec.Command(filepath.Join(p.bins, "postbackctl"), "simulate", "--run="+strings.ReplaceAll(testenv.Name("b"), "_", ""),
			"--rate="+strconv.Itoa(rate), "--duration="+d.String(), "--min-ctit=12s", "--max-ctit=16s", "--max-delay=2s", "--reinstall-after=15s",
			"--ingest-config="+filepath.Join(p.dir, "ingest.yaml"), "--config", filepath.Join(p.dir, "postbackctl.yaml"))
		sim.Stderr = io.Discard
		simStart := time.Now()
		out, err := sim.Output()
		simWall := time.Since(simStart)
		if err != nil {
			b.Fatalf("simulate at %d/s: %v\n%s", rate, err, out)
		}
		simCPU := sim.ProcessState.UserTime() + sim.ProcessState.SystemTime()
		// Let the last postbacks reach ClickHouse before reading the
		// histograms (the sink flushes every 200 ms here).
		time.Sleep(5 * time.Second)
		wall := time.Since(t0)
		cpu1 := p.cpu()
		sent := sentRequests(string(out))
		reached := float64(sent) / simWall.Seconds() // the postbacks' tail after the touches lowers it
		inst := p.freshness(b, "installs").minus(before["installs"])
		clk := p.freshness(b, "clicks").minus(before["clicks"])
		var parts []string
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for n := range cpu1 {
				if !yield(n) {
					return
				}
			}
		}) {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", name, 100*(cpu1[name]-cpu0[name])/wall.Seconds()))
		}
		parts = append(parts, fmt.Sprintf("simulator %.0f%%", 100*simCPU.Seconds()/wall.Seconds()))
		fmt.Printf("%8d %10.0f %14s %14s  %s\n", rate, reached, inst.p99(), clk.p99(), strings.Join(parts, ", "))
		if !inst.within(2) || !clk.within(2) {
			break
		}
		best = rate
	}
	fmt.Printf("highest simulated rate with freshness p99 <= 2 s: %d requests/s planned\n", best)
	b.ReportMetric(float64(best), "req/s-at-p99<=2s")
}

// histogram is a cumulative Prometheus histogram: bucket bound -> count.
type histogram map[float64]float64

// freshness reads the sink's sink_freshness_seconds of table.
func (p *pipeline) freshness(b *testing.B, table string) histogram {
	resp, err := http.Get("http://" + p.sinkTel + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	h := histogram{}
	prefix := fmt.Sprintf(`sink_freshness_seconds_bucket{table=%q,le="`, table)
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		le, rest, _ := strings.Cut(strings.TrimPrefix(l, prefix), `"}`)
		bound, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, err = 1e18, nil
		}
		n, err2 := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil && err2 == nil {
			h[bound] = n
		}
	}
	return h
}

func (h histogram) minus(o histogram) histogram {
	out := histogram{}
	for k, v := range h {
		out[k] = v - o[k]
	}
	return out
}

// within reports whether 99 % of the observations are at most bound
// seconds (bound must be a bucket's).
func (h histogram) within(bound float64) bool {
	total := h[1e18]
	return total > 0 && h[bound] >= 0.99*total
}

// p99 is the smallest bucket bound holding 99 % of the observations.
func (h histogram) p99() string {
	total := h[1e18]
	if total == 0 {
		return "-"
	}
	bounds := make([]float64, 0, len(h))
	for k := range h {
		bounds = append(bounds, k)
	}
	slices.Sort(bounds)
	for _, bd := range bounds {
		if h[bd] >= 0.99*total {
			if bd == 1e18 {
				return "> 3600 s"
			}
			return fmt.Sprintf("<= %g s", bd)
		}
	}
	return "-"
}

// cpu is the CPU seconds used so far by the services, the broker and
// ClickHouse.
func (p *pipeline) cpu() map[string]float64 {
	out := map[string]float64{}
	for name, pr := range p.procs {
		pr.mu.Lock()
		pid := pr.cmd.Process.Pid
		pr.mu.Unlock()
		out[name] = testenv.ProcCPU(pid)
	}
	for name, pid := range testenv.LocalServerPIDs() {
		out[name] = testenv.ProcCPU(pid)
	}
	return out
}

// sentRequests reads the request count from simulate's summary line.
func sentRequests(out string) int {
	_, rest, ok := strings.Cut(out, "requests sent")
	if !ok {
		return 0
	}
	head := out[:len(out)-len(rest)-len("requests sent")]
	fields := strings.Fields(head)
	n, _ := strconv.Atoi(fields[len(fields)-1])
	return n
}
