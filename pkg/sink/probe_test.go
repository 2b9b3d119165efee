package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// pingConn is a ClickHouse connection whose pings fail while down is set.
type pingConn struct {
	driver.Conn // nil: only Ping is called
	down        atomic.Bool
	pings       atomic.Int64
}

func (c *pingConn) Ping(context.Context) error {
	c.pings.Add(1)
	if c.down.Load() {
		return errors.New("dial tcp: connection refused")
	}
	return nil
}

func waitingLoader(c *pingConn) *Loader {
	return &Loader{conn: c, probe: 10 * time.Millisecond}
}

// TestWaitReturnsWhenServerIsBack: a long backoff is cut short once pings
// succeed after failing, or after an attempt that could not connect; a
// server that answered all along keeps the backoff, and so does a retry
// loop whose server was seen back already.
func TestWaitReturnsWhenServerIsBack(t *testing.T) {
	ctx := context.Background()
	c := &pingConn{}
	l := waitingLoader(c)

	c.down.Store(true)
	time.AfterFunc(100*time.Millisecond, func() { c.down.Store(false) })
	var p prober
	start := time.Now()
	back, err := l.wait(ctx, time.Minute, &p)
	if err != nil || !back || time.Since(start) > 10*time.Second {
		t.Fatalf("server back after 100ms: back=%v err=%v after %s, want back well before the 1 min backoff", back, err, time.Since(start))
	}
	if c.pings.Load() < 2 {
		t.Errorf("%d pings, want a failed one and a successful one", c.pings.Load())
	}

	// Up all along: the whole backoff.
	start = time.Now()
	if back, err := l.wait(ctx, 150*time.Millisecond, &p); err != nil || back || time.Since(start) < 150*time.Millisecond {
		t.Errorf("server up throughout: back=%v err=%v after %s, want the full 150ms backoff", back, err, time.Since(start))
	}

	// An attempt that could not connect: the first successful ping says back.
	p.failed(fmt.Errorf("insert 3 rows into clicks: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}))
	start = time.Now()
	if back, err := l.wait(ctx, time.Minute, &p); err != nil || !back || time.Since(start) > 10*time.Second {
		t.Errorf("after a dial error, server up: back=%v err=%v after %s", back, err, time.Since(start))
	}
	// Another error (the server refused the rows) is not a sign of absence.
	p.failed(errors.New("code: 53, message: Type mismatch"))
	start = time.Now()
	if back, err := l.wait(ctx, 100*time.Millisecond, &p); err != nil || back || time.Since(start) < 100*time.Millisecond {
		t.Errorf("after a server error: back=%v err=%v after %s, want the full backoff", back, err, time.Since(start))
	}

	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := l.wait(cctx, time.Minute, &p); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}
