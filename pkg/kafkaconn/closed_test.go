package kafkaconn

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestClosedEarlyIsNotMisconfigured: a broker that closes the connection at
// the first request without speaking TLS is restarting, not misconfigured:
// Check reports it as unreachable, so services wait instead of stopping.
func TestClosedEarlyIsNotMisconfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c := Plain([]string{ln.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = c.Check(ctx)
	var mis *MisconfiguredError
	if err == nil || errors.As(err, &mis) {
		t.Fatalf("Check = %v, want an unreachable (not misconfigured) error", err)
	}
}
