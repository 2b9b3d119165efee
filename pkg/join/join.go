package join

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/stage"
	"github.com/adtrack/postback/pkg/statestore"
	"github.com/adtrack/postback/pkg/topics"
)

// Stage names: the consumer group of a stage is Group+"."+name, its state
// lives under StateDir/name, its changelog is Group+"."+name+"-changelog".
const (
	StageClickID = "clickid"
	StageDevice  = "device"
	StageIPUA    = "ipua"
	StageEvents  = "events"
)

// Stages lists the stages in the order an install visits them.
var Stages = [...]string{StageClickID, StageDevice, StageIPUA, StageEvents}

// Topics names the topics the joins read and write.
type Topics struct {
	Clicks, Impressions, InstallsRaw, EventsRaw string // inputs (co-partitioned)
	InstallsAttributed, EventsAttributed        string // outputs for downstream teams
	Rejected                                    string // records the joins cannot use
}

// Config configures the joins. Zero durations and counts take the defaults
// documented on each field.
type Config struct {
	Brokers []string
	// ClientOpts (TLS, SASL, ...) apply to every Kafka client.
	ClientOpts []kgo.Opt
	// Group prefixes the stages' consumer groups and names the internal
	// topics: Group+".by-device-repartition" and so on.
	Group    string
	StateDir string
	Topics   Topics
	// RepartitionReplication is the replication factor of internal topics
	// created at start (0: the broker default).
	RepartitionReplication int16
	// RepartitionRetention is retention.ms of the repartition topics created
	// at start; records there are consumed within seconds (0: 7 days).
	RepartitionRetention time.Duration

	Rules attribution.RuleSet
	Rates attribution.Rates
	// Campaigns resolves campaign ids for media sources and CPI bids (nil:
	// installs carry only what their touch carried).
	Campaigns attribution.CampaignLookup

	// DedupWindow is how long an event_id is remembered to drop MMP
	// retries (0: 72 h; MMPs retry for up to a day or two).
	DedupWindow time.Duration
	// LateAllowance is added to every window before state expires, because
	// windows run to the install time and postbacks arrive late (0: 24 h).
	LateAllowance time.Duration
	// EventJoinWindow is how long an attributed install stays joinable by
	// its in-app events (0: 30 days).
	EventJoinWindow time.Duration
	// EventGrace is how long an in-app event whose install has not reached
	// the events stage waits for it before it is published organic (0: 10 min).
	EventGrace time.Duration
	// MaxCandidates bounds the device, IP+UA and impression candidates
	// carried per install: the latest ones before the install win anyway
	// (0: 16). Click flooding still counts every click in the window.
	MaxCandidates int
	// ExpiryInterval is how much stream time passes between expiry runs
	// of a partition's state (0: 1 min).
	ExpiryInterval time.Duration
	// AlignSlack bounds how far, in record time, a stage reads one input
	// partition ahead of another that still has a backlog (0: 100 ms; see
	// stage.Config.AlignSlack). It keeps installs behind the clicks that
	// precede them when a backlog is read after an outage.
	AlignSlack time.Duration

	TransactionTimeout time.Duration // per stage; see stage.Config
	SessionTimeout     time.Duration
	MaxPollRecords     int
	// Cache is the block cache shared by every store of the process (nil:
	// one small cache per store).
	Cache *statestore.Cache

	Registerer prometheus.Registerer // nil: metrics are not registered
	Logger     *slog.Logger
}

func (c *Config) fill() error {
	if c.Group == "" || c.StateDir == "" || len(c.Brokers) == 0 {
		return errors.New("join: Brokers, Group and StateDir are required")
	}
	t := c.Topics
	for name, v := range map[string]string{"clicks": t.Clicks, "impressions": t.Impressions, "installs_raw": t.InstallsRaw,
		"events_raw": t.EventsRaw, "installs_attributed": t.InstallsAttributed, "events_attributed": t.EventsAttributed, "rejected": t.Rejected} {
		if v == "" {
			return fmt.Errorf("join: topic %s is not named", name)
		}
	}
	if err := c.Rules.Validate(); err != nil {
		return err
	}
	if err := c.Rates.Validate(); err != nil {
		return err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DedupWindow, 72*time.Hour)
	def(&c.LateAllowance, 24*time.Hour)
	def(&c.EventJoinWindow, 30*24*time.Hour)
	def(&c.EventGrace, 10*time.Minute)
	def(&c.ExpiryInterval, time.Minute)
	def(&c.AlignSlack, 100*time.Millisecond)
	def(&c.RepartitionRetention, 7*24*time.Hour)
	if c.MaxCandidates <= 0 {
		c.MaxCandidates = 16
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Joiner runs the four stages of the attribution service.
type Joiner struct {
	cfg Config
	m   *metrics
	// Internal repartition topics.
	byDevice, byIPUA, byJoinKey string
}

// New validates cfg and returns a Joiner.
func New(cfg Config) (*Joiner, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	j := &Joiner{cfg: cfg, m: newMetrics(cfg.Registerer),
		byDevice:  cfg.Group + ".by-device-repartition",
		byIPUA:    cfg.Group + ".by-ipua-repartition",
		byJoinKey: cfg.Group + ".by-joinkey-repartition",
	}
	return j, nil
}

// InternalTopics returns the repartition topics the joins create and use.
func (j *Joiner) InternalTopics() []string { return []string{j.byDevice, j.byIPUA, j.byJoinKey} }

// Changelog returns the changelog topic of a stage.
func (j *Joiner) Changelog(stageName string) string {
	return stage.Config{Group: j.cfg.Group, Name: stageName}.GroupID() + "-changelog"
}

// inputWait is how long EnsureTopics looks for an input topic before it
// reports it missing.
const inputWait = 15 * time.Second

// EnsureTopics checks that the four input topics are co-partitioned and
// creates the repartition topics with the same partition count (or checks
// the count of those that exist). Every mismatch is an error naming both
// topics and counts: a join over differently partitioned topics would
// silently miss matches.
func (j *Joiner) EnsureTopics(ctx context.Context) (partitions int32, err error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(j.cfg.Brokers...)}, j.cfg.ClientOpts...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := j.cfg.Topics
	inputs := []string{t.Clicks, t.Impressions, t.InstallsRaw, t.EventsRaw}
	// A topic created a moment ago may not be in every broker's metadata
	// yet: look again for a while before calling it missing.
	wctx, cancel := context.WithTimeout(ctx, inputWait)
	_, err = topics.WaitVisible(wctx, adm, inputs)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("join: input %w (run postbackctl bootstrap)", err)
	}
	td, err := adm.ListTopics(ctx, append(slices.Clone(inputs), j.InternalTopics()...)...)
	if err != nil {
		return 0, fmt.Errorf("join: list topics: %w", err)
	}
	n, first := int32(-1), ""
	for _, name := range append(inputs, j.InternalTopics()...) {
		d, ok := td[name]
		if !ok || d.Err != nil {
			continue // internal: created below
		}
		c := int32(len(d.Partitions))
		if n < 0 {
			n, first = c, name
		} else if c != n {
			return 0, fmt.Errorf("join: topics are not co-partitioned: %s has %d partitions, %s has %d; every joined topic needs the same count", first, n, name, c)
		}
	}
	rf := j.cfg.RepartitionReplication
	if rf == 0 {
		rf = -1
	}
	retention := strconv.FormatInt(j.cfg.RepartitionRetention.Milliseconds(), 10)
	for _, name := range j.InternalTopics() {
		if d, ok := td[name]; ok && d.Err == nil {
			continue
		}
		resp, err := adm.CreateTopic(ctx, n, rf, map[string]*string{"retention.ms": &retention}, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("join: create %s: %w", name, err)
		}
		j.cfg.Logger.Info("created repartition topic", "topic", name, "partitions", n)
	}
	// A created topic takes a moment to reach every broker's metadata; the
	// stages would refuse it as missing.
	if _, err := topics.WaitVisible(ctx, adm, j.InternalTopics()); err != nil {
		return 0, fmt.Errorf("join: waiting for the repartition topics: %w", err)
	}
	return n, nil
}

// StageConfig returns the stage.Config of one stage.
func (j *Joiner) StageConfig(name string) stage.Config {
	t := j.cfg.Topics
	var inputs []string
	switch name {
	case StageClickID:
		inputs = []string{t.Clicks, t.Impressions, t.InstallsRaw}
	case StageDevice:
		inputs = []string{j.byDevice}
	case StageIPUA:
		inputs = []string{j.byIPUA}
	case StageEvents:
		inputs = []string{t.EventsRaw, j.byJoinKey}
	}
	return stage.Config{
		Name: name, Brokers: j.cfg.Brokers, Group: j.cfg.Group, Inputs: inputs,
		// Stages that join two topics (or partitions keyed differently)
		// must not let one run ahead of the other through a backlog.
		AlignSlack:           j.cfg.AlignSlack,
		ChangelogReplication: j.cfg.RepartitionReplication,
		StateDir:             j.cfg.StateDir, Cache: j.cfg.Cache,
		TransactionTimeout: j.cfg.TransactionTimeout, SessionTimeout: j.cfg.SessionTimeout,
		ClientOpts: j.cfg.ClientOpts, MaxPollRecords: j.cfg.MaxPollRecords,
		Logger: j.cfg.Logger,
	}
}

// Processor returns the processor of one stage (for Run, tests and
// benchmarks that drive a stage without Kafka).
func (j *Joiner) Processor(name string) stage.Processor {
	switch name {
	case StageClickID:
		return &clickIDStage{j: j, clocks: clocks{}}
	case StageDevice:
		return &deviceStage{j: j, clocks: clocks{}}
	case StageIPUA:
		return &ipuaStage{j: j, clocks: clocks{}}
	case StageEvents:
		return &eventsStage{j: j, clocks: clocks{}}
	}
	return nil
}

// Run ensures the topics, then runs every stage until ctx is done or one
// fails; a failure stops the others and is returned (the service exits and
// restarts, re-reading from the last commit).
func (j *Joiner) Run(ctx context.Context) error {
	n, err := j.EnsureTopics(ctx)
	if err != nil {
		return err
	}
	j.cfg.Logger.Info("attribution joins starting", "partitions", n, "stages", Stages)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, name := range Stages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := stage.Run(ctx, j.StageConfig(name), j.Processor(name))
			if err != nil && !errors.Is(err, context.Canceled) {
				cancel(err) // names the stage already
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// clock is a partition's stream time (the greatest record timestamp seen
// since the partition was assigned to this process) and when its timers
// and expiry last ran. It is memory only: after a restart the first
// record's timestamp starts it again, and any grace deadline that passed
// meanwhile is settled then.
type clock struct {
	now, timers, expiry time.Time
}

type clocks map[int32]*clock

// advance moves partition p's stream time to ts and reports whether the
// timers (once per second of stream time) and the expiry (once per
// interval) are due.
func (c clocks) advance(p int32, ts time.Time, interval time.Duration) (cl *clock, timers, expiry bool) {
	cl = c[p]
	if cl == nil {
		cl = &clock{}
		c[p] = cl
	}
	if ts.After(cl.now) {
		cl.now = ts
	}
	if cl.now.Sub(cl.timers) >= time.Second {
		cl.timers, timers = cl.now, true
	}
	if cl.now.Sub(cl.expiry) >= interval {
		cl.expiry, expiry = cl.now, true
	}
	return cl, timers, expiry
}

// reject sends an input record the joins cannot use to the rejected topic,
// with the reason and its bytes, and counts it.
func (j *Joiner) reject(rec *kgo.Record, kind, reason string, emit func(*kgo.Record)) {
	j.m.rejected.WithLabelValues(rec.Topic).Inc()
	r := event.Rejected{Source: "attribution", Kind: kind, ReceivedAt: rec.Timestamp.UTC(),
		Reason: fmt.Sprintf("%s (from %s/%d@%d)", reason, rec.Topic, rec.Partition, rec.Offset),
		Raw:    event.Raw{Body: string(rec.Value)}}
	v, err := json.Marshal(&r)
	if err != nil {
		return // cannot happen: every field is a string or a time
	}
	emit(&kgo.Record{Topic: j.cfg.Topics.Rejected, Key: []byte("attribution"), Value: v, Timestamp: rec.Timestamp})
}

// out builds an output record carrying the input's timestamp, so that the
// stages downstream see the stream time of the original input.
func out(topic string, key []byte, tag byte, v any, ts time.Time) (*kgo.Record, error) {
	b := []byte{}
	if tag != 0 {
		b = append(b, tag)
	}
	b, err := json.Append(b, v, 0)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w", topic, err)
	}
	return &kgo.Record{Topic: topic, Key: key, Value: b, Timestamp: ts}, nil
}
