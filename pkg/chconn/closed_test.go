package chconn

import (
	"errors"
	"net"
	"testing"
	"time"
)

// closingServer accepts connections and closes them at once, as a server
// going down or starting up does: no TLS, no answer.
func closingServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestClosedEarlyIsNotMisconfigured: a server that closes the connection
// at the first request without speaking TLS is an outage to wait out, not
// a setting to fix (a chaos run saw ClickHouse's restart stop the sink).
func TestClosedEarlyIsNotMisconfigured(t *testing.T) {
	cfg := Defaults()
	cfg.Addr, cfg.DialTimeout = []string{closingServer(t)}, 2*time.Second
	_, err := Open(t.Context(), cfg)
	if err == nil {
		t.Fatal("Open succeeded against a server that closes every connection")
	}
	if errors.Is(err, ErrMisconfigured) {
		t.Fatalf("a server closing connections without TLS was taken for a misconfiguration: %v", err)
	}
}
