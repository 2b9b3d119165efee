package forwarder

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHostLimits: per host, never more than host_concurrency attempts at
// once and no faster than host_rate; a host whose queue stays full spills
// new jobs at once while another host keeps being served.
func TestHostLimits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := DefaultSettings()
	s.HostConcurrency, s.HostRate, s.HostQueue = 3, 20, 5
	var mu sync.Mutex
	active, peak := map[string]int{}, map[string]int{}
	var done atomic.Int32
	release := make(chan struct{})
	h := newHosts(ctx, s, func(j *job) {
		mu.Lock()
		active[j.host]++
		peak[j.host] = max(peak[j.host], active[j.host])
		mu.Unlock()
		if j.host == "slow:80" {
			<-release
		}
		mu.Lock()
		active[j.host]--
		mu.Unlock()
		done.Add(1)
	})

	// The slow host: 3 in flight, 5 queued, then full; the next job waits
	// the whole wait and spills, and the one after spills at once.
	for i := 0; i < 8; i++ {
		if !h.enqueueWait(&job{host: "slow:80"}, time.Second) {
			t.Fatalf("slow job %d refused before its queue was full", i)
		}
		time.Sleep(10 * time.Millisecond) // let the workers pick up the first three
	}
	if h.enqueueWait(&job{host: "slow:80"}, 50*time.Millisecond) {
		t.Fatal("a job for a full, stuck host was queued")
	}
	start := time.Now()
	if h.enqueueWait(&job{host: "slow:80"}, time.Minute) {
		t.Fatal("a job for a spilling host was queued")
	}
	if time.Since(start) > 30*time.Second {
		t.Error("a spilling host made the caller wait")
	}

	// Meanwhile a fast host is served, at most 20/s after its burst.
	const n = 30
	start = time.Now()
	for i := 0; i < n; i++ {
		if !h.enqueueWait(&job{host: "fast:80"}, time.Second) {
			t.Fatalf("fast job %d refused", i)
		}
	}
	for done.Load() < n {
		time.Sleep(5 * time.Millisecond)
	}
	if min := time.Duration(n-20) * time.Second / 20; time.Since(start) < min {
		t.Errorf("%d jobs at 20/s (burst 20) took %s, less than %s", n, time.Since(start), min)
	}
	close(release)
	for done.Load() < n+8 {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for host, p := range peak {
		if p > 3 {
			t.Errorf("%s: %d attempts at once, want at most 3", host, p)
		}
	}
	if peak["slow:80"] != 3 {
		t.Errorf("slow host: peak %d in flight, want 3", peak["slow:80"])
	}
}
