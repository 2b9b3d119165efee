//go:build integration

package stage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/testenv"
)

// integrationConfig returns a stage config on fresh topics of the real
// broker, its changelog included (deleted at cleanup).
func integrationConfig(t *testing.T) (Config, string) {
	brokers := testenv.Kafka(t)
	in := testenv.Topic(t, brokers, 3)
	out := testenv.Topic(t, brokers, 3)
	cfg := Config{
		Name: "count", Kafka: kafkaconn.Plain(brokers), Group: testenv.Name("stage"), Inputs: []string{in},
		StateDir: t.TempDir(), TransactionTimeout: 10 * time.Second, SessionTimeout: 6 * time.Second,
		MaxPollRecords: 50, Logger: testLogger(t),
	}
	createChangelog(t, cfg, 3)
	return cfg, out
}

func TestCountsAndRestoreIntegration(t *testing.T) {
	cfg, out := integrationConfig(t)
	countsScenario(t, cfg, out)
}

// TestHelperProcess is the stage run as a child process by
// TestCrashIntegration, which SIGKILLs it. It does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("STAGE_HELPER") != "1" {
		t.Skip("helper process for TestCrashIntegration")
	}
	cfg := Config{
		Name: "count", Kafka: kafkaconn.Plain(strings.Split(os.Getenv("STAGE_BROKERS"), ",")), Group: os.Getenv("STAGE_GROUP"),
		Inputs: []string{os.Getenv("STAGE_IN")}, StateDir: os.Getenv("STAGE_DIR"),
		TransactionTimeout: 10 * time.Second, SessionTimeout: 6 * time.Second, MaxPollRecords: 50,
		Logger: testLogger(t),
	}
	hangAt, _ := strconv.Atoi(os.Getenv("STAGE_HANG_AT"))
	err := Run(context.Background(), cfg, &hangAfter{p: counter{out: os.Getenv("STAGE_OUT"), delay: time.Millisecond}, at: hangAt})
	t.Fatalf("helper stage returned: %v", err)
}

// hangAfter processes records with p until the at-th, then announces it on
// stdout and blocks forever inside the open transaction (whose records
// reach the broker meanwhile), waiting for the SIGKILL.
type hangAfter struct {
	p  Processor
	n  int
	at int
}

func (h *hangAfter) Process(ctx context.Context, rec *kgo.Record, st *statestore.Batch, emit func(*kgo.Record)) error {
	if err := h.p.Process(ctx, rec, st, emit); err != nil {
		return err
	}
	if h.n++; h.n == h.at {
		fmt.Println(hangMarker)
		select {}
	}
	return nil
}

const hangMarker = "STAGE_HELPER_HANGING_IN_TRANSACTION"

// TestCrashIntegration SIGKILLs a stage process mid-stream, inside an open
// transaction that has already produced output and changelog records (the
// child blocks in Process after its 1010th record, a few records into a
// transaction of up to 50, and says so; the parent waits half a second for
// the producer to send them, then kills it). It restarts the stage in
// process on the same state directory and checks with a read_committed
// consumer that every key's counts are 1..n exactly once, and with a
// read_uncommitted one that the killed transaction's records are in the log.
func TestCrashIntegration(t *testing.T) {
	cfg, out := integrationConfig(t)
	const n, keys = 3000, 17
	counts := map[string]int{}
	produceInputs(t, cfg.Kafka.Brokers(), cfg.Inputs[0], n, keys, counts)

	var (
		mu     sync.Mutex
		stderr bytes.Buffer
	)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "STAGE_HELPER=1",
		"STAGE_BROKERS="+strings.Join(cfg.Kafka.Brokers(), ","), "STAGE_GROUP="+cfg.Group,
		"STAGE_IN="+cfg.Inputs[0], "STAGE_OUT="+out, "STAGE_DIR="+cfg.StateDir,
		"STAGE_HANG_AT="+strconv.Itoa(n/3+10))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hanging := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			mu.Lock()
			stderr.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !seen && strings.Contains(sc.Text(), hangMarker) {
				seen = true
				close(hanging)
			}
		}
	}()
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		_ = pw.Close()
		if t.Failed() {
			mu.Lock()
			t.Logf("helper output:\n%s", stderr.String())
			mu.Unlock()
		}
	}()
	select {
	case <-hanging:
	case <-time.After(2 * time.Minute):
		t.Fatal("the helper never reached its hanging point")
	}
	time.Sleep(500 * time.Millisecond) // the producer sends what was emitted
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	killed = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}
	committed := len(testenv.ReadAll(t, cfg.Kafka.Brokers(), out))
	written := uncommittedCount(t, cfg.Kafka.Brokers(), out)
	t.Logf("at the kill: %d outputs committed, %d records in the log (incl. open/aborted)", committed, written)
	if committed >= n || written <= committed {
		t.Fatalf("%d committed, %d written: the kill did not land inside a transaction with records", committed, written)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, cfg.Name)); err != nil {
		t.Fatalf("helper left no state: %v", err)
	}

	// Restart on the same state directory.
	stop := runStage(t, cfg, counter{out: out})
	waitOutputs(t, cfg.Kafka.Brokers(), out, n, 3*time.Minute)
	if err := stop(); err != nil {
		t.Fatalf("restarted stage: %v", err)
	}
	checkCounts(t, testenv.ReadAll(t, cfg.Kafka.Brokers(), out), counts)
}

// uncommittedCount is the number of data records in topic as a
// read_uncommitted consumer sees them (aborted and open transactions
// included).
func uncommittedCount(t *testing.T, brokers []string, topic string) int {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	n := 0
	for len(pending) > 0 {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			break
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			n += len(p.Records)
			if len(p.Records) > 0 && p.Records[len(p.Records)-1].Offset+2 >= pending[p.Partition] {
				delete(pending, p.Partition)
			}
		})
		if fs.NumRecords() == 0 {
			break // only markers remain
		}
	}
	return n
}

func TestTwoInstancesIntegration(t *testing.T) {
	cfg, out := integrationConfig(t)
	cfg.MaxPollRecords = 20
	twoInstancesScenario(t, cfg, out)
}
