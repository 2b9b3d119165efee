package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Broker is a Kafka broker of the test's own, started with the project's
// deploy/local/kafka.sh on free ports and a temporary state directory, so
// a test can stop and restart it without disturbing the shared broker that
// other packages' tests use at the same time. It is stopped at cleanup.
//
//	b := testenv.StartBroker(t)
//	brokers := b.Brokers()
//	b.Restart() // or b.Stop() ... b.Start()
type Broker struct {
	t      testing.TB
	script string
	env    []string
	addr   string
	state  string

	mu      sync.Mutex
	running bool
}

// StartBroker starts a dedicated broker and fails the test if it cannot.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	return startBroker(t)
}

func startBroker(t testing.TB, env ...string) *Broker {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	port, cport := FreePort(t), FreePort(t)
	state := t.TempDir()
	b := &Broker{t: t, script: filepath.Join(root, "deploy", "local", "kafka.sh"),
		addr: fmt.Sprintf("127.0.0.1:%d", port), state: state,
		env: append(append(os.Environ(), "POSTBACK_LOCAL_STATE_DIR="+state,
			"POSTBACK_KAFKA_PORT="+fmt.Sprint(port), "POSTBACK_KAFKA_CONTROLLER_PORT="+fmt.Sprint(cport),
			"POSTBACK_KAFKA_HEAP=384m"), env...)}
	b.Start()
	t.Cleanup(func() {
		if b.isRunning() {
			b.run("stop")
		}
	})
	return b
}

// Brokers returns the broker's bootstrap address.
func (b *Broker) Brokers() []string { return []string{b.addr} }

// Start starts the broker (again) and waits until it answers. Start, Stop
// and Restart fail the test when the script fails: call them from the
// test's goroutine.
func (b *Broker) Start() { b.t.Helper(); b.run("start") }

// Stop stops the broker (SIGTERM, then SIGKILL after 30 s, as the script does).
func (b *Broker) Stop() { b.t.Helper(); b.run("stop") }

// Restart stops and starts the broker.
func (b *Broker) Restart() { b.t.Helper(); b.run("restart") }

// Kill sends SIGKILL to the broker process (an unclean stop: no
// controlled shutdown, nothing flushed); Start brings it back.
func (b *Broker) Kill() {
	b.t.Helper()
	pidFile := filepath.Join(b.state, "kafka", "kafka.pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		b.t.Fatalf("dedicated broker pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.t.Fatalf("dedicated broker pid %q: %v", raw, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		b.t.Fatalf("kill broker %d: %v", pid, err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
	b.mu.Lock()
	b.running = false
	b.mu.Unlock()
}

// CopyState copies the broker's logs and data directories to dst, for
// diagnosis after a failure (kafka.sh tool kafka.tools.DumpLogSegments
// reads the data).
func (b *Broker) CopyState(dst string) error {
	return exec.Command("cp", "-r", filepath.Join(b.state, "kafka"), dst).Run()
}

// Tool runs a Kafka command-line class (kafka.sh tool) against the broker
// and returns its output, e.g. org.apache.kafka.tools.TransactionsCommand.
func (b *Broker) Tool(class string, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{b.script, "tool", class, "--bootstrap-server", b.addr}, args...)...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (b *Broker) isRunning() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

func (b *Broker) run(action string) {
	b.t.Helper()
	cmd := exec.Command("bash", b.script, action)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("kafka.sh %s (dedicated broker %s): %v\n%s", action, b.addr, err, out)
		return
	}
	b.mu.Lock()
	b.running = action != "stop"
	b.mu.Unlock()
}

// repoRoot finds the module root (the directory holding go.mod) above the
// test's working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir || !strings.HasPrefix(parent, string(filepath.Separator)) {
			return "", fmt.Errorf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SecureBroker is a dedicated broker in kafka.sh's secured mode: besides
// its PLAINTEXT listener (Brokers, for the test's own admin clients) it
// has a SASL_SSL listener (SCRAM-SHA-256/512 and PLAIN for User) and an
// SSL listener that requires a client certificate signed by the CA.
type SecureBroker struct {
	*Broker
	SASLAddr, TLSAddr string
	// CAFile signs the broker's and the client's certificates.
	CAFile, ClientCert, ClientKey string
	User, Password, PasswordFile  string
}

// StartSecureBroker starts a dedicated broker in secured mode and fails the
// test if it cannot.
func StartSecureBroker(t testing.TB) *SecureBroker {
	t.Helper()
	sasl, tls := FreePort(t), FreePort(t)
	b := startBroker(t, "POSTBACK_KAFKA_SECURE=1",
		"POSTBACK_KAFKA_SASL_PORT="+fmt.Sprint(sasl), "POSTBACK_KAFKA_TLS_PORT="+fmt.Sprint(tls))
	dir := filepath.Join(b.state, "kafka", "tls")
	s := &SecureBroker{Broker: b,
		SASLAddr: fmt.Sprintf("127.0.0.1:%d", sasl), TLSAddr: fmt.Sprintf("127.0.0.1:%d", tls),
		CAFile: filepath.Join(dir, "ca.pem"), ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
		User: "postback", PasswordFile: filepath.Join(dir, "password")}
	pw, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		t.Fatalf("secured broker's password: %v", err)
	}
	s.Password = strings.TrimSpace(string(pw))
	return s
}
