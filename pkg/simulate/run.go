// Package simulate plays a traffic.Plan against the ingest HTTP API, as
// publishers, browsers and MMPs would, and reads back from ClickHouse what
// the pipeline made of it. The plan and its ground truth are pkg/traffic;
// this package is the I/O.
//
//	r := simulate.Runner{BaseURL: "http://127.0.0.1:8080", Tokens: tokens}
//	outs, err := r.Run(ctx, plan)
//	truth := traffic.Truth(plan, outs)
//	found, err := simulate.ReadFound(ctx, conn, truth)
//	traffic.Compare(truth, found).Print(os.Stdout)
package simulate

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/adtrack/postback/pkg/traffic"
)

// Runner sends a plan's requests to ingest.
type Runner struct {
	// BaseURL is ingest's address, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Tokens are ingest's postback tokens by MMP.
	Tokens map[string]string
	// Client sends the requests; it must not follow redirects (a click's
	// 302 carries the click id). Default: a client with a 10 s timeout.
	Client *http.Client
	// Concurrency bounds requests in flight (default 64).
	Concurrency int
	// RetryFor is how long a request answered 503, 429, 5xx or not at all
	// is retried, as MMPs retry (default 10 minutes; their windows are
	// hours, a simulation's are shorter).
	RetryFor time.Duration
	// Progress, when set, gets a line every ProgressEvery (default 2 s).
	Progress      io.Writer
	ProgressEvery time.Duration
}

// tracker is one request's state while the plan plays.
type tracker struct {
	done chan struct{} // closed when out is final
	out  traffic.Outcome
}

// Run plays p: each request at its planned time (later if what it needs
// has not been answered yet), retried while ingest answers 503; the MMPs'
// re-sends of an accepted postback follow it. It returns every request's
// outcome, in plan order, once all are final or ctx ends.
func (r *Runner) Run(ctx context.Context, p *traffic.Plan) ([]traffic.Outcome, error) {
	cl := r.Client
	if cl == nil {
		cl = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	conc := r.Concurrency
	if conc <= 0 {
		conc = 64
	}
	retryFor := r.RetryFor
	if retryFor <= 0 {
		retryFor = 10 * time.Minute
	}
	ts := make([]*tracker, len(p.Requests))
	for i := range ts {
		ts[i] = &tracker{done: make(chan struct{}), out: traffic.Outcome{Seq: i, Codes: map[int]int{}}}
	}
	var st stats
	stopProgress := r.progress(&st, len(p.Requests))
	defer stopProgress()

	if err := r.warmup(ctx, cl, p, ts, &st); err != nil {
		return nil, err
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i, req := range p.Requests {
		if req.Warmup {
			continue
		}
		if err := sleepUntil(ctx, start.Add(req.At)); err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := ts[i]
			defer close(t.done)
			if req.After >= 0 {
				select {
				case <-ts[req.After].done:
				case <-ctx.Done():
					return
				}
				if !traffic.Accepted(ts[req.After].out.Status) {
					t.out.Status = -1 // what it follows never got in: nothing to send
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			r.play(ctx, cl, req, ts, retryFor, &st)
		}()
	}
	wg.Wait()
	outs := make([]traffic.Outcome, len(ts))
	for i, t := range ts {
		outs[i] = t.out
	}
	return outs, ctx.Err()
}

// warmup plays the plan's warm-up impressions, retrying a 404 (ingest
// has not read the campaign from Kafka yet) for up to a minute.
func (r *Runner) warmup(ctx context.Context, cl *http.Client, p *traffic.Plan, ts []*tracker, st *stats) error {
	deadline := time.Now().Add(time.Minute)
	for _, req := range p.Requests {
		if !req.Warmup {
			continue
		}
		t := ts[req.Seq]
		hr := traffic.Render(req, traffic.Resolved{}, r.Tokens)
		for {
			code, _, _ := r.send(ctx, cl, hr)
			if traffic.Accepted(code) { // the 404s before are not traffic
				t.out.Codes[code]++
				st.count(code)
				t.out.Status, t.out.At = code, time.Now().UTC()
				close(t.done)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("campaign %s: ingest still answers %d a minute after the campaigns were published (is ingest reading %s?)",
					req.Touch.Campaign.ID, code, "the campaigns topic")
			}
			if err := sleepUntil(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	return nil
}

// play sends one request until it gets a final answer, then the MMP's
// re-sends of it.
func (r *Runner) play(ctx context.Context, cl *http.Client, req *traffic.Request, ts []*tracker, retryFor time.Duration, st *stats) {
	t := ts[req.Seq]
	res := resolve(req, ts)
	t.out.InstallTime, t.out.EventTime = res.InstallTime, res.EventTime
	hr := traffic.Render(req, res, r.Tokens)
	deadline := time.Now().Add(retryFor)
	backoff := 250 * time.Millisecond
	for {
		code, body, hdr := r.send(ctx, cl, hr)
		t.out.Codes[code]++
		st.count(code)
		if final(code) || time.Now().After(deadline) || ctx.Err() != nil {
			t.out.Status = code
			if traffic.Accepted(code) {
				t.out.At = time.Now().UTC()
				t.out.ID = answerID(req, body, hdr)
			}
			break
		}
		wait := backoff
		if s, err := strconv.Atoi(hdr.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		backoff = min(2*backoff, 5*time.Second)
		if sleepUntil(ctx, time.Now().Add(wait)) != nil {
			t.out.Status = code
			return
		}
	}
	if !traffic.Accepted(t.out.Status) {
		return
	}
	// The MMP sends an accepted postback again (it did not see the answer,
	// or retries by policy): the same request, the same event id.
	rng := rand.New(rand.NewPCG(uint64(req.Seq), 7))
	for range req.Sends - 1 {
		if sleepUntil(ctx, time.Now().Add(time.Duration(200+rng.IntN(1800))*time.Millisecond)) != nil {
			return
		}
		code, body, hdr := r.send(ctx, cl, hr)
		t.out.Codes[code]++
		st.count(code)
		if traffic.Accepted(code) {
			if id := answerID(req, body, hdr); id != t.out.ID {
				t.out.Mismatched++
			}
		}
	}
}

// final reports whether an answer ends the request's retries: anything but
// 503, 429, other 5xx and no answer.
func final(code int) bool {
	return code != 0 && code != http.StatusTooManyRequests && code/100 != 5
}

// resolve fills what req's rendering needs from the answers it follows.
func resolve(req *traffic.Request, ts []*tracker) traffic.Resolved {
	var res traffic.Resolved
	pb := req.Postback
	if pb == nil {
		return res
	}
	if pb.ClickFrom >= 0 {
		res.ClickID = ts[pb.ClickFrom].out.ID
		res.ClickTime = ts[pb.ClickFrom].out.At
	}
	now := time.Now().UTC()
	switch {
	case pb.Kind == traffic.InAppEvent && req.After >= 0:
		res.InstallTime = ts[req.After].out.InstallTime
		res.EventTime = res.InstallTime.Add(pb.EventOffset)
	case pb.Kind == traffic.InAppEvent:
		res.InstallTime = now.Add(-time.Hour)
		res.EventTime = now.Add(pb.CTIT)
	case req.After >= 0:
		anchor := ts[req.After].out
		if res.ClickTime.IsZero() && anchor.InstallTime.IsZero() {
			res.ClickTime = anchor.At // the touch of a device or IP + UA match
		}
		base := anchor.At
		res.InstallTime = base.Add(pb.CTIT)
	default:
		res.InstallTime = now.Add(pb.CTIT)
	}
	// MMPs report whole seconds (Branch and Tenjin milliseconds): keep the
	// time the postback carries, so the truth's days are the pipeline's.
	res.InstallTime = res.InstallTime.Truncate(time.Second)
	res.EventTime = res.EventTime.Truncate(time.Second)
	return res
}

// send makes one request; code 0 is no answer.
func (r *Runner) send(ctx context.Context, cl *http.Client, hr traffic.HTTPRequest) (int, []byte, http.Header) {
	req, err := http.NewRequestWithContext(ctx, hr.Method, r.BaseURL+hr.Path, nil)
	if err != nil {
		return 0, nil, http.Header{}
	}
	for k, v := range hr.Header {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, nil, http.Header{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, resp.Header
}

// answerID is the id an accepted answer carries: the click id of a click
// (JSON, or in the redirect's tracking link) or the event id of a postback.
func answerID(req *traffic.Request, body []byte, hdr http.Header) string {
	if req.Kind == traffic.ClickRedirect {
		return clickIDFromLink(hdr.Get("Location"), req.Touch.Campaign.ClickIDParam)
	}
	var a struct {
		ClickID string `json:"click_id"`
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(body, &a)
	return a.ClickID + a.EventID
}

// clickIDFromLink finds parameter name in a tracking link, also inside a
// URL-valued parameter (Adjust's install_callback).
func clickIDFromLink(link, name string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	q := u.Query()
	if v := q.Get(name); v != "" {
		return v
	}
	for _, vs := range q {
		for _, v := range vs {
			if strings.HasPrefix(v, "http") {
				if id := clickIDFromLink(v, name); id != "" {
					return id
				}
			}
		}
	}
	return ""
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stats counts answers for the progress line.
type stats struct{ sent, ok, unavailable, other atomic.Int64 }

func (s *stats) count(code int) {
	s.sent.Add(1)
	switch {
	case traffic.Accepted(code):
		s.ok.Add(1)
	case code == http.StatusServiceUnavailable || code == 0:
		s.unavailable.Add(1)
	default:
		s.other.Add(1)
	}
}

// progress prints a line every ProgressEvery until the returned func is
// called.
func (r *Runner) progress(st *stats, planned int) func() {
	if r.Progress == nil {
		return func() {}
	}
	every := r.ProgressEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				el := time.Since(start)
				fmt.Fprintf(r.Progress, "simulate: %6s  %d requests of %d planned (+ retries), %.0f/s; 2xx/302 %d, 503 or no answer %d, other %d\n",
					el.Truncate(time.Second), st.sent.Load(), planned, float64(st.sent.Load())/el.Seconds(), st.ok.Load(), st.unavailable.Load(), st.other.Load())
			}
		}
	}()
	return func() { close(stop); <-done }
}
