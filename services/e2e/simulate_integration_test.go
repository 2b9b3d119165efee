//go:build integration

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/traffic"
)

// TestSimulatedDay runs the three services as processes on the real broker
// and ClickHouse, plays a small simulated day through ingest with
// `postbackctl simulate --check` (every MMP's format, retries, every
// attribution rule, fraud, reinstalls, malformed and unauthenticated
// postbacks), and requires ClickHouse's views to equal the ground truth
// exactly: counts, spend, revenue and the ratios per campaign and day,
// each install's match type and campaign, every malformed request answered
// 400 and in rejected, nothing stored from an unauthenticated one.
func TestSimulatedDay(t *testing.T) {
	brokers := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	k := fmt.Sprintf("kafka:\n  brokers: [%q]\n", brokers[0])
	p := startPipeline(t, setup{
		kafka:      map[string]string{"ingest": k, "attribution": k, "sink": k, "postbackctl": k},
		clickhouse: fmt.Sprintf("clickhouse: {addr: [%q], database: %q}\n", ch.Addr[0], ch.Database),
	}, "", "rules: {flood_clicks: 5}\n")

	truthFile := filepath.Join(p.dir, "truth.json")
	run := strings.ReplaceAll(testenv.Name("s"), "_", "")
	args := []string{"simulate", "--run=" + run, "--seed=7", "--rate=150", "--duration=15s", "--ctr=0.2", "--cvr=0.3",
		"--malformed=0.3", "--unauthenticated=0.2", "--flood-clicks=5", "--min-ctit=12s", "--max-ctit=16s", "--max-delay=3s", "--reinstall-after=20s",
		"--ingest-config=" + filepath.Join(p.dir, "ingest.yaml"), "--truth=" + truthFile, "--check", "--check-within=3m"}
	cmd := exec.Command(filepath.Join(p.bins, "postbackctl"), append(args, "--config", filepath.Join(p.dir, "postbackctl.yaml"))...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nall equal") {
		t.Fatalf("postbackctl simulate --check: %v\n%s", err, out)
	}
	t.Logf("%s", out)

	var truth traffic.GroundTruth
	b, err := os.ReadFile(truthFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	// The run really exercised what it claims: every case on every MMP
	// that supports it, malformed and unauthenticated requests, retries.
	cases := map[string]map[traffic.Case]bool{}
	for _, it := range truth.Installs {
		if cases[it.MMP] == nil {
			cases[it.MMP] = map[traffic.Case]bool{}
		}
		cases[it.MMP][it.Case] = true
	}
	if len(cases) != 7 {
		t.Errorf("installs of %d MMPs, want 7: %v", len(cases), cases)
	}
	for mmp, cs := range cases {
		if len(cs) < 8 {
			t.Errorf("%s: only cases %v", mmp, cs)
		}
	}
	if truth.Requests.Malformed400 == 0 || truth.Requests.Unauthenticated401 == 0 || truth.Tables["rejected"] != truth.Requests.Malformed400 {
		t.Errorf("requests %+v, tables %v: want malformed (400, in rejected) and unauthenticated (401) requests", truth.Requests, truth.Tables)
	}
	if truth.Requests.Sent <= truth.Tables["impressions"]+truth.Tables["clicks"]+truth.Tables["installs"]+truth.Tables["events"]+truth.Requests.Malformed400+truth.Requests.Unauthenticated401 {
		t.Errorf("requests %+v: want MMP re-sends beyond one request per row", truth.Requests)
	}
}
