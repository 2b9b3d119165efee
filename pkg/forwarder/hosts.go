package forwarder

import (
	"context"
	"sync"
	"time"
)

// hosts runs attempts with a queue, a concurrency limit and a rate limit
// per destination host, so a slow or rate-limited publisher only ever
// waits on itself: the consumer never blocks on a host, and a full host
// queue spills to the retry queue instead of growing.
type hosts struct {
	ctx      context.Context
	conc     int
	rate     float64 // attempts per second per host; 0: unlimited
	burst    float64
	maxQueue int
	refill   int // free slots that wake a consumer waiting on a full queue
	run      func(*job)

	mu sync.Mutex
	m  map[string]*host
	wg sync.WaitGroup
}

type host struct {
	queue  []*job
	active int
	tokens float64
	last   time.Time
	// room is signalled when a full queue has refill free slots again;
	// spilling is set when it did not within a whole wait (a slow host):
	// new jobs then spill at once until the queue is half empty.
	room     chan struct{}
	spilling bool
}

func newHosts(ctx context.Context, s Settings, run func(*job)) *hosts {
	return &hosts{ctx: ctx, conc: s.HostConcurrency, rate: float64(s.HostRate), burst: float64(max(1, s.HostRate)), maxQueue: s.HostQueue,
		refill: max(1, min(s.HostConcurrency, s.HostQueue/2)), run: run, m: map[string]*host{}}
}

// enqueue adds j to its host's queue; false when the queue is full.
func (h *hosts) enqueue(j *job) bool {
	return h.enqueueWait(j, 0)
}

// enqueueWait is enqueue waiting up to wait for room in a full queue, so
// a fast host's queue that is merely full is not spilled; a host that does
// not free refill slots (a round of its workers) within the wait is slow,
// and spills without waiting until its queue is half empty again. Waiting
// for a round rather than a slot wakes the caller once per round when it
// outpaces the host (a backlog), and lets no host slower than that set
// the caller's pace for every other host.
func (h *hosts) enqueueWait(j *job, wait time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	hq := h.m[j.host]
	if hq == nil {
		hq = &host{tokens: h.burst, last: time.Now(), room: make(chan struct{}, 1)}
		h.m[j.host] = hq
	}
	if len(hq.queue) >= h.maxQueue {
		if hq.spilling || wait <= 0 {
			return false
		}
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
		for len(hq.queue) >= h.maxQueue {
			h.mu.Unlock()
			timedOut := false
			select {
			case <-hq.room:
			case <-deadline.C:
				timedOut = true
			case <-h.ctx.Done():
				timedOut = true
			}
			h.mu.Lock()
			if timedOut && len(hq.queue) >= h.maxQueue {
				hq.spilling = true
				return false
			}
		}
	}
	hq.queue = append(hq.queue, j)
	if hq.active < h.conc {
		hq.active++
		h.wg.Add(1)
		go h.work(hq)
	}
	return true
}

// work runs the host's jobs until its queue is empty.
func (h *hosts) work(hq *host) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		if len(hq.queue) == 0 || h.ctx.Err() != nil {
			// The host stays in h.m (one per endpoint host): its token
			// bucket must outlive an empty queue.
			hq.active--
			h.mu.Unlock()
			return
		}
		j := hq.queue[0]
		hq.queue[0] = nil
		hq.queue = hq.queue[1:]
		if hq.spilling && len(hq.queue) <= h.maxQueue/2 {
			hq.spilling = false
		}
		if len(hq.queue) <= h.maxQueue-h.refill {
			select {
			case hq.room <- struct{}{}:
			default:
			}
		}
		wait := h.reserve(hq)
		h.mu.Unlock()
		if wait > 0 {
			select {
			case <-h.ctx.Done():
			case <-time.After(wait):
			}
		}
		h.run(j)
	}
}

// reserve takes a token of hq's bucket and returns how long to wait for it.
func (h *hosts) reserve(hq *host) time.Duration {
	if h.rate <= 0 {
		return 0
	}
	now := time.Now()
	hq.tokens = min(h.burst, hq.tokens+now.Sub(hq.last).Seconds()*h.rate)
	hq.last = now
	hq.tokens--
	if hq.tokens >= 0 {
		return 0
	}
	return time.Duration(-hq.tokens / h.rate * float64(time.Second))
}

// wait waits for every worker to return (after ctx ended).
func (h *hosts) wait() { h.wg.Wait() }
