package forwarder

import (
	"container/heap"
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/forward"
)

// job is the next attempt of one delivery.
type job struct {
	pt   *part
	meta forward.Meta
	// req is the rendered request; a fresh job carries its endpoint and
	// conversion instead until a host worker renders it (render runs on
	// the workers, in parallel, not on the consumer).
	req     *forward.Request
	ep      *forward.Endpoint
	conv    forward.Conversion
	host    string
	attempt int       // the attempt to make, 1 for the first
	first   time.Time // when the first attempt was made; zero before
	src     forward.Source
	fresh   bool // counted in pt.pending: settling it lets the offset advance
}

// newJob is the first attempt of delivery id of c to ep, whose host is
// host.
func newJob(pt *part, ep *forward.Endpoint, c forward.Conversion, src forward.Source, id, host string) *job {
	at := c.Attribution()
	return &job{pt: pt, ep: ep, conv: c, attempt: 1, src: src, fresh: true, host: host,
		meta: forward.Meta{DeliveryID: id, EndpointID: ep.ID, Publisher: ep.Publisher,
			Kind: c.Kind, EventID: c.EventID(), AppID: c.AppID(), CampaignID: at.CampaignID, MediaSource: at.MediaSource,
			ConvertedAt: at.AttributedAt}}
}

// render renders a fresh job's request; the error is the job's final
// outcome (the endpoint cannot render this conversion).
func (j *job) render() error {
	if j.req != nil {
		return nil
	}
	req, err := forward.Render(j.ep, j.conv)
	j.req, j.conv = &req, forward.Conversion{}
	return err
}

// jobFromState is a retrying delivery read back from the state topic.
func jobFromState(pt *part, st *forward.State) *job {
	return &job{pt: pt, meta: st.Meta, req: st.Request, attempt: st.Attempts + 1, first: st.FirstAt, src: st.Source,
		host: hostOf(st.Request.URL)}
}

// hostOf is the host:port a URL or URL template (whose host has no
// macros) sends to.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	if u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(raw)); err == nil {
		return u.Host
	}
	return raw
}

// templateHost is hostOf an endpoint's URL template, parsed once per
// template rather than per delivery. f.mu is held.
func (f *Forwarder) templateHost(tmpl string) string {
	if h, ok := f.hostOf[tmpl]; ok {
		return h
	}
	if len(f.hostOf) >= 10_000 { // templates of endpoints since changed or deleted
		clear(f.hostOf)
	}
	h := hostOf(tmpl)
	f.hostOf[tmpl] = h
	return h
}

// fullQueueWait is how long the consumer waits for room in a full host
// queue before it spills the delivery to the retry queue: long enough for
// a fast host to take the next one, short enough that a slow host costs
// the others one such wait (then it spills at once).
const fullQueueWait = 100 * time.Millisecond

// start sends a fresh delivery to its host's queue, or to the retry queue
// when the host's queue is full.
func (f *Forwarder) start(j *job) {
	if !f.hosts.enqueueWait(j, fullQueueWait) {
		f.spill(j)
	}
}

// begin counts j in flight on its partition, unless the partition was
// revoked: then j is dropped and its next owner redoes it. It takes no
// lock: j is counted before the mark is read, and revoke marks before it
// reads the count, so either revoke waits for j or j sees the mark.
func (f *Forwarder) begin(j *job) bool {
	j.pt.inflight.Add(1)
	if !j.pt.revoked.Load() {
		return true
	}
	f.mu.Lock()
	f.landed(j.pt)
	f.mu.Unlock()
	return false
}

// landed counts one delivery of pt as no longer in flight. f.mu is held,
// so a waiting revoke cannot miss the broadcast.
func (f *Forwarder) landed(pt *part) {
	if pt.inflight.Add(-1) == 0 {
		f.idle.Broadcast()
	}
}

// prepare begins j and renders its request; false if j is no longer this
// instance's or its request cannot be rendered (recorded as failed).
func (f *Forwarder) prepare(j *job) bool {
	if !f.begin(j) {
		return false
	}
	if err := j.render(); err != nil {
		f.record(j, nil, forward.Decision{Outcome: forward.OutcomeFailed}, err.Error(), f.now())
		return false
	}
	return true
}

// spill puts a delivery whose host queue is full in the retry queue,
// without an attempt.
func (f *Forwarder) spill(j *job) {
	if !f.prepare(j) {
		return
	}
	f.m.deferred.WithLabelValues(j.meta.EndpointID).Inc()
	next := f.now().Add(f.cfg.Retry.Backoff(1, forward.Jitter()))
	f.record(j, nil, forward.Decision{Outcome: forward.OutcomeRetrying, Next: next}, "", f.now())
}

// attempt makes the next attempt of j (a host worker runs it).
func (f *Forwarder) attempt(j *job) {
	if !f.prepare(j) {
		return
	}
	if _, ok := f.cfg.Endpoints.Get(j.meta.EndpointID); !ok {
		f.record(j, nil, forward.Decision{Outcome: forward.OutcomeDropped}, "endpoint removed", f.now())
		return
	}
	f.m.sent.WithLabelValues(j.meta.EndpointID).Inc()
	start := f.now()
	res := f.send.send(context.Background(), j.req, j.attempt)
	f.m.latency.WithLabelValues(j.meta.EndpointID).Observe(res.latency.Seconds())
	if j.first.IsZero() {
		j.first = start
	}
	dec := f.cfg.Retry.Decide(res.Result, j.attempt, j.first, f.now(), forward.Jitter())
	errText := ""
	if res.Err != nil {
		errText = res.Err.Error()
	}
	if dec.Outcome == forward.OutcomeRetrying {
		f.mu.Lock()
		full := f.backlogN >= f.cfg.Settings.MaxBacklog
		f.mu.Unlock()
		if full {
			dec = forward.Decision{Outcome: forward.OutcomeDropped}
			errText = fmt.Sprintf("retry backlog full (forwarder.max_backlog %d); last: %s", f.cfg.Settings.MaxBacklog, describe(res))
		}
	}
	// The recorder writes it: this worker's next attempt starts now.
	f.outcomes <- outcome{j: j, res: &res, dec: dec, errText: errText, at: f.now()}
}

// outcome is an attempt's result on its way to record.
type outcome struct {
	j       *job
	res     *attemptResult
	dec     forward.Decision
	errText string
	at      time.Time // when the attempt ended
}

// recordLoop records attempts' outcomes until outcomes is closed. Host
// workers hand their outcomes over rather than encode and produce them,
// so no worker (one of host_concurrency) is busy with Kafka instead of
// sending its next callback.
func (f *Forwarder) recordLoop() {
	for o := range f.outcomes {
		f.record(o.j, o.res, o.dec, o.errText, o.at)
	}
}

func describe(r attemptResult) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("HTTP %d", r.Status)
}

// write is one delivery's outcome on its way to Kafka: settled once every
// record carrying it (its attempt, its state or its done set) is
// acknowledged.
type write struct {
	j       *job
	st      forward.State
	dec     forward.Decision
	batched bool // its state goes in a done set, not a record of its own
	left    atomic.Int32
	failed  atomic.Bool
}

// ack counts one of w's records as written (or failed); true for the last.
func (w *write) ack(err error) bool {
	if err != nil {
		w.failed.Store(true)
	}
	return w.left.Add(-1) == 0
}

// record writes the attempt to the delivery log (unless none was made and
// the delivery only moves to the retry queue) and the delivery's state,
// then settles it once both are acknowledged. The state of a delivery
// final at its first attempt goes in its partition's next done set.
func (f *Forwarder) record(j *job, res *attemptResult, dec forward.Decision, errText string, at time.Time) {
	final := dec.Outcome != forward.OutcomeRetrying
	w := &write{j: j, dec: dec, batched: final && j.fresh,
		st: forward.State{Meta: j.meta, Status: forward.StateDone, Attempts: j.attempt - 1, FirstAt: j.first, Source: j.src}}
	if res != nil {
		w.st.Attempts = j.attempt
	}
	if !final {
		w.st.Status, w.st.Due, w.st.Request = forward.StateRetrying, dec.Next, j.req
	}
	recs := make([]*kgo.Record, 0, 2)
	if res != nil || final {
		recs = append(recs, f.attemptRecord(j, res, dec, errText, at))
	}
	if !w.batched {
		v, _ := json.Marshal(w.st)
		recs = append(recs, &kgo.Record{Topic: f.cfg.Topics.ForwarderState, Partition: f.statePartition(j.src.Partition),
			Key: []byte(j.meta.DeliveryID), Value: v})
	}
	n := len(recs)
	if w.batched {
		n++
	}
	w.left.Store(int32(n))
	for _, r := range recs {
		f.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			if err != nil {
				f.writeFailed(fmt.Errorf("write delivery %s to %s: %w", j.meta.DeliveryID, r.Topic, err))
			}
			if w.ack(err) {
				f.settle(w)
			}
		})
	}
	if w.batched {
		f.addDone(w)
	}
}

// attemptRecord is the delivery-log record of an attempt (res nil: a
// final outcome reached without one).
func (f *Forwarder) attemptRecord(j *job, res *attemptResult, dec forward.Decision, errText string, now time.Time) *kgo.Record {
	final := dec.Outcome != forward.OutcomeRetrying
	att := forward.Attempt{Meta: j.meta, AttemptedAt: now, Method: j.req.Method, Host: j.host, Outcome: dec.Outcome,
		Final: final, Error: errText, Payout: j.req.Payout, Currency: j.req.Currency}
	if res != nil {
		att.Attempt, att.AttemptedAt, att.LatencyMS = j.attempt, now.Add(-res.latency), res.latency.Milliseconds()
		att.Status, att.Response = res.Status, res.response
	}
	if !final {
		att.NextAt = &dec.Next
	}
	v, _ := json.Marshal(att)
	return &kgo.Record{Topic: f.cfg.Topics.Deliveries, Partition: j.src.Partition % f.logPartN, Key: []byte(j.meta.DeliveryID), Value: v}
}

// writeFailed hands Run the first failed write: it stops, and a restart
// redoes what was not settled.
func (f *Forwarder) writeFailed(err error) {
	select {
	case f.failed <- err:
	default:
	}
}

// settle runs once a delivery's records are acknowledged: the record's
// offset may advance, and a retrying delivery joins the retry queue.
func (f *Forwarder) settle(w *write) {
	f.m.outcome(w.j.meta.EndpointID, w.dec.Outcome)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settleLocked(w)
}

// settleLocked is settle without the metrics; f.mu is held.
func (f *Forwarder) settleLocked(w *write) {
	j, pt := w.j, w.j.pt
	f.landed(pt)
	if w.failed.Load() {
		return // unsettled: Run stops, and a restart redoes it
	}
	if j.fresh {
		pt.pending[j.src.Offset]--
	}
	if pt.revoked.Load() {
		return
	}
	if w.st.Status == forward.StateDone {
		pt.known[j.meta.DeliveryID] = forward.StateDone
		if !w.batched { // a done set is tombstoned as a whole
			pt.done = append(pt.done, doneRef{offset: j.src.Offset, key: j.meta.DeliveryID})
		}
		return
	}
	pt.known[j.meta.DeliveryID] = forward.StateRetrying
	f.push(pt, &w.st)
}

// push adds a retrying delivery to the retry queue. f.mu is held.
func (f *Forwarder) push(pt *part, st *forward.State) {
	j := jobFromState(pt, st)
	f.pushJob(j, st.Due)
}

func (f *Forwarder) pushJob(j *job, due time.Time) {
	heap.Push(&f.retries, retryEntry{due: due, j: j})
	f.backlogN++
	f.m.backlog.WithLabelValues(j.meta.EndpointID).Inc()
	if f.retries[0].j == j {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// retryLoop hands due retries to their hosts until ctx ends.
func (f *Forwarder) retryLoop(ctx context.Context) {
	for {
		f.mu.Lock()
		now := f.now()
		var due []*job
		for len(f.retries) > 0 && !f.retries[0].due.After(now) {
			e := heap.Pop(&f.retries).(retryEntry)
			f.backlogN--
			f.m.backlog.WithLabelValues(e.j.meta.EndpointID).Dec()
			if !e.j.pt.revoked.Load() {
				due = append(due, e.j)
			}
		}
		wait := time.Minute
		if len(f.retries) > 0 {
			wait = f.retries[0].due.Sub(now)
		}
		f.mu.Unlock()
		for _, j := range due {
			if !f.hosts.enqueue(j) {
				f.mu.Lock()
				f.pushJob(j, now.Add(f.cfg.Retry.Backoff(1, forward.Jitter())))
				f.mu.Unlock()
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

type retryEntry struct {
	due time.Time
	j   *job
}

// retryHeap orders the retry queue by due time.
type retryHeap []retryEntry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, k int) bool { return h[i].due.Before(h[k].due) }
func (h retryHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryEntry)) }
func (h *retryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = retryEntry{}
	*h = old[:len(old)-1]
	return e
}
