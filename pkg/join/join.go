package join

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/attribution"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/stage"
	"github.com/adtrack/postback/pkg/statestore"
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

// Config configures the joins. Every duration and count in Settings is
// required (DefaultSettings has the service's defaults), and New refuses a
// zero.
type Config struct {
	// Kafka is the connection every client of the joins starts from.
	Kafka *kafkaconn.Conn
	// Group prefixes the stages' consumer groups and names the internal
	// topics: Group+".by-device-repartition" and so on.
	Group    string
	StateDir string
	Topics   Topics
	// RepartitionReplication is the replication factor of the internal
	// topics created at start (0: the broker default).
	RepartitionReplication int16

	Rules attribution.RuleSet
	Rates attribution.Rates
	// Campaigns resolves campaign ids for media sources and CPI bids (nil:
	// installs carry only what their touch carried).
	Campaigns attribution.CampaignLookup

	// Settings are the windows, intervals and limits (the join section of
	// the service's configuration; each key documents its field).
	Settings
	// Cache is the block cache shared by every store of the process (nil:
	// one small cache per store; Settings.CacheSize is for the caller who
	// creates it).
	Cache *statestore.Cache

	Registerer prometheus.Registerer // nil: metrics are not registered
	Logger     *slog.Logger
}

func (c *Config) fill() error {
	if c.Group == "" || c.StateDir == "" || c.Kafka == nil {
		return errors.New("join: Kafka, Group and StateDir are required")
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
	for name, d := range map[string]time.Duration{"RepartitionRetention": c.RepartitionRetention, "DedupWindow": c.DedupWindow,
		"LateAllowance": c.LateAllowance, "EventJoinWindow": c.EventJoinWindow, "EventGrace": c.EventGrace,
		"ExpiryInterval": c.ExpiryInterval, "AlignSlack": c.AlignSlack, "TransactionTimeout": c.TransactionTimeout,
		"CommitInterval": c.CommitInterval, "StallTimeout": c.StallTimeout} {
		if d <= 0 {
			return fmt.Errorf("join: %s must be positive, got %v", name, d)
		}
	}
	if c.MaxCandidates <= 0 {
		return fmt.Errorf("join: MaxCandidates must be positive, got %d", c.MaxCandidates)
	}
	if c.TickInterval < 0 || (c.TickInterval > 0 && c.TickLag <= 0) {
		return fmt.Errorf("join: TickInterval must be 0 (off) or positive with a positive TickLag, got %v and %v", c.TickInterval, c.TickLag)
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
	sm  *stage.Metrics
	// Internal topics: repartition topics between the stages, and ticks.
	byDevice, byIPUA, byJoinKey, ticks string
	health                             map[string]*stage.Health
	topicsHealth                       *stage.Health // creating the internal topics
}

// New validates cfg and returns a Joiner.
func New(cfg Config) (*Joiner, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	j := &Joiner{cfg: cfg, m: newMetrics(cfg.Registerer), sm: stage.NewMetrics(cfg.Registerer, "attribution"),
		byDevice:     cfg.Group + ".by-device-repartition",
		byIPUA:       cfg.Group + ".by-ipua-repartition",
		byJoinKey:    cfg.Group + ".by-joinkey-repartition",
		ticks:        cfg.Group + ".ticks",
		health:       map[string]*stage.Health{},
		topicsHealth: stage.NewHealth("topics"),
	}
	for _, name := range Stages {
		j.health[name] = stage.NewHealth(name)
	}
	return j, nil
}

// InternalTopics returns the repartition topics the joins create and use.
func (j *Joiner) InternalTopics() []string { return []string{j.byDevice, j.byIPUA, j.byJoinKey} }

// Changelog returns the changelog topic of a stage.
func (j *Joiner) Changelog(stageName string) string {
	return stage.Config{Group: j.cfg.Group, Name: stageName}.GroupID() + "-changelog"
}

// Ready returns nil when every stage is making progress (or has nothing
// to do), else an error naming each stage that is not and why.
func (j *Joiner) Ready() error {
	errs := []error{j.topicsHealth.Ready()}
	for _, name := range Stages {
		errs = append(errs, j.health[name].Ready())
	}
	return errors.Join(errs...)
}

// StageConfig returns the stage.Config of one stage for this instance.
func (j *Joiner) StageConfig(name, instance string) stage.Config {
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
	c := stage.Config{
		Name: name, Kafka: j.cfg.Kafka, Group: j.cfg.Group, Inputs: inputs,
		StateDir: j.cfg.StateDir, Cache: j.cfg.Cache,
		TransactionTimeout: j.cfg.TransactionTimeout, CommitInterval: j.cfg.CommitInterval,
		SessionTimeout: j.cfg.SessionTimeout, StallTimeout: j.cfg.StallTimeout,
		MaxPollRecords: j.cfg.MaxPollRecords,
		Health:         j.health[name], Metrics: j.sm, Logger: j.cfg.Logger,
	}
	if name == StageClickID || name == StageEvents {
		// These join topics written by different producers (clicks and
		// installs; events and the installs the other stages publish):
		// through a backlog one must not run ahead of the other. The
		// device and IP+UA stages read one repartition topic whose
		// partitions share no state, so their order across partitions
		// changes nothing they compute.
		c.AlignSlack = j.cfg.AlignSlack
	}
	if instance != "" {
		c.TransactionalID = c.GroupID() + "." + instance
		c.GroupInstanceID = instance
	}
	if j.cfg.TickInterval > 0 {
		c.Inputs = append(c.Inputs, j.ticks)
		c.Ticks = j.ticks
	}
	return c
}

// conn returns the options of one client of the Joiner (see
// kafkaconn.Conn.Opts for name).
func (j *Joiner) conn(name string) []kgo.Opt {
	return j.cfg.Kafka.Opts(name)
}

// Processor returns the processor of one stage (for Run, tests and
// benchmarks that drive a stage without Kafka).
func (j *Joiner) Processor(name string) stage.Processor {
	switch name {
	case StageClickID:
		return newClickIDStage(j)
	case StageDevice:
		return newDeviceStage(j)
	case StageIPUA:
		return newIPUAStage(j)
	case StageEvents:
		return newEventsStage(j)
	}
	return nil
}

// Run ensures the topics, then runs every stage until ctx is done or one
// fails with an error no retry can fix; that error stops the others and is
// returned. Kafka faults do not end Run: the stages ride them out (see
// pkg/stage) and Ready says what is stuck meanwhile.
func (j *Joiner) Run(ctx context.Context) error {
	n, err := j.ensureTopicsRetrying(ctx)
	if err != nil {
		return err
	}
	instance, err := j.instanceID()
	if err != nil {
		return err
	}
	j.cfg.Logger.Info("attribution joins starting", "partitions", n, "stages", Stages, "instance", instance)
	// One prober (one client) serves the ticker and every stage's watchdog.
	prober, err := stage.NewProber(j.conn("")...)
	if err != nil {
		return fmt.Errorf("join: kafka client: %w", err)
	}
	defer prober.Close() // after wg.Wait: the stages use it until they return
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if j.cfg.TickInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.tick(ctx, prober, n)
		}()
	}
	for _, name := range Stages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := j.StageConfig(name, instance)
			c.Prober = prober
			err := stage.Run(ctx, c, j.Processor(name))
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

// instanceID returns Config.InstanceID, else the id kept under the state
// directory (created on first start).
func (j *Joiner) instanceID() (string, error) {
	if j.cfg.InstanceID != "" {
		return j.cfg.InstanceID, nil
	}
	path := filepath.Join(j.cfg.StateDir, "instance-id")
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("join: read instance id: %w", err)
	}
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	id := hex.EncodeToString(r)
	if err := os.MkdirAll(j.cfg.StateDir, 0o755); err != nil {
		return "", fmt.Errorf("join: state dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("join: write instance id: %w", err)
	}
	return id, nil
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
