package forwarder

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/forward"
)

// BenchmarkSenderVsPlain isolates the HTTP side of a callback: the
// forwarder's sender (egress-checked dialer, timeouts, signing with a
// cached key, the answer's snippet read) beside a plain net/http loop
// sending the same request with the same concurrency to the same local
// receiver, in one run. With BenchmarkForwarderVsPlain it tells what the
// forwarder's gap to the plain loop is made of: this one is the sending,
// the rest is Kafka (consume, delivery log, state).
func BenchmarkSenderVsPlain(b *testing.B) {
	const n, conc = 30000, 16
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	secret := []byte("0123456789abcdef0123")
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k1"), secret, 0o600); err != nil {
		b.Fatal(err)
	}
	egress := &forward.Egress{AllowCIDRs: []string{"127.0.0.1/32"}}
	if err := egress.Validate(); err != nil {
		b.Fatal(err)
	}
	sd := newSender(DefaultSettings(), egress, newKeyring(dir))
	req := &forward.Request{Method: forward.MethodGet, URL: srv.URL + "/cb?click=k1&sub=s9&payout=1.5", KeyID: "k1", DeliveryID: "d1"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	var failed sync.Once
	fail := func(err error) { failed.Do(func() { b.Error(err) }) }
	sender := func() {
		if res := sd.send(context.Background(), req, 1); res.Err != nil || res.Status != http.StatusOK {
			fail(res.Err)
		}
	}
	plain := func() {
		if err := plainSend(client, req, secret); err != nil {
			fail(err)
		}
	}
	rate := func(do func()) float64 {
		work := make(chan struct{})
		var wg sync.WaitGroup
		start := time.Now()
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					do()
				}
			}()
		}
		for range n {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		return n / time.Since(start).Seconds()
	}
	rate(sender) // warm both connection pools
	rate(plain)
	for i := 0; i < b.N; i++ {
		// Plain before and after: the machine's load drifts.
		p1 := rate(plain)
		s := rate(sender)
		p := (p1 + rate(plain)) / 2
		b.ReportMetric(s, "sender_requests/s")
		b.ReportMetric(p, "plain_requests/s")
		b.ReportMetric(100*s/p, "%_of_plain")
	}
}

// plainSend is the plain loop's callback, the ceiling both benchmarks
// measure against: r signed with secret and sent with net/http's client,
// nothing else.
func plainSend(client *http.Client, r *forward.Request, secret []byte) error {
	hr, err := http.NewRequest(r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return err
	}
	hr.Header.Set(forward.HeaderIdempotencyKey, r.DeliveryID)
	ts := time.Now().Unix()
	hr.Header.Set(forward.HeaderTimestamp, strconv.FormatInt(ts, 10))
	hr.Header.Set(forward.HeaderSignature, forward.Sign(secret, ts, r.Method, hr.URL.RequestURI(), r.Body))
	resp, err := client.Do(hr)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
