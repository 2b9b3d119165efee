package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpoints(t *testing.T) {
	tel := New()
	var kafkaDown bool
	tel.AddReadiness("kafka", func(context.Context) error {
		if kafkaDown {
			return errors.New("no brokers")
		}
		return nil
	})
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	kafkaDown = true
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "kafka") || !strings.Contains(body, "no brokers") {
		t.Fatalf("/readyz while down = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d", code)
	}
}

func TestReadyNamesEveryFailure(t *testing.T) {
	tel := New()
	tel.AddReadiness("a", func(context.Context) error { return errors.New("x") })
	tel.AddReadiness("b", func(context.Context) error { return nil })
	tel.AddReadiness("c", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	failed := tel.Ready(context.Background())
	if len(failed) != 2 || failed["a"] == "" || failed["c"] == "" {
		t.Fatalf("failed = %v", failed)
	}
}
