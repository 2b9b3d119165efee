// Package topics declares the pipeline's Kafka topics and creates them.
//
//	specs := topics.Specs(cfg.Kafka.Topics) // a topics.Config
//	res, err := topics.Ensure(ctx, kadm.NewClient(cl), specs)
//
// Ensure creates what is missing and checks what exists: a topic with the
// wrong partition count breaks co-partitioned joins, so it is reported as an
// error rather than silently used.
package topics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/adtrack/postback/pkg/config"
)

// Config names the pipeline's topics and how bootstrap creates them (the
// kafka.topics section of every service).
type Config struct {
	Clicks             string        `mapstructure:"clicks" desc:"Topic of clicks, keyed by click_id."`
	Impressions        string        `mapstructure:"impressions" desc:"Topic of impressions, keyed by impression_id."`
	InstallsRaw        string        `mapstructure:"installs_raw" desc:"Topic of parsed install postbacks, keyed by join key."`
	EventsRaw          string        `mapstructure:"events_raw" desc:"Topic of parsed in-app event postbacks, keyed by join key."`
	InstallsAttributed string        `mapstructure:"installs_attributed" desc:"Topic of attributed installs, keyed by event_id."`
	EventsAttributed   string        `mapstructure:"events_attributed" desc:"Topic of attributed in-app events, keyed by event_id."`
	Campaigns          string        `mapstructure:"campaigns" desc:"Compacted topic of campaigns, keyed by campaign_id."`
	Rejected           string        `mapstructure:"rejected" desc:"Topic of authenticated postbacks that were rejected, keyed by source."`
	SKAN               string        `mapstructure:"skan" desc:"Topic of verified SKAdNetwork and AdAttributionKit postbacks, keyed by transaction_id."`
	Endpoints          string        `mapstructure:"endpoints" desc:"Compacted topic of publisher callback endpoints, keyed by endpoint_id (postbackctl endpoints apply)."`
	Deliveries         string        `mapstructure:"deliveries" desc:"Topic of the forwarder's delivery log, one record per callback attempt, keyed by delivery_id."`
	ForwarderState     string        `mapstructure:"forwarder_state" desc:"Compacted topic of the forwarder's delivery state (delivered-set and retry queue): a delivery's own record keyed by delivery_id, or a batch of deliveries done at their first attempt keyed done-set/...; partition i holds input partition i's deliveries."`
	Partitions         int           `mapstructure:"partitions" desc:"Partitions of every topic created by bootstrap (joined topics must share a count)."`
	ReplicationFactor  int           `mapstructure:"replication_factor" desc:"Replication factor of topics created by bootstrap."`
	MinInsyncReplicas  int           `mapstructure:"min_insync_replicas" desc:"min.insync.replicas of topics created by bootstrap: an acks=all write fails unless this many replicas have it. 0: 2 with a replication factor of 3 or more, else 1."`
	Retention          time.Duration `mapstructure:"retention" desc:"retention.ms of the non-compacted topics created by bootstrap; long enough to re-attribute from Kafka."`
}

// Defaults returns the topic names of DESIGN.md and bootstrap's defaults.
func Defaults() Config {
	return Config{
		Clicks:             "clicks.v1",
		Impressions:        "impressions.v1",
		InstallsRaw:        "installs.raw.v1",
		EventsRaw:          "events.raw.v1",
		InstallsAttributed: "installs.attributed.v1",
		EventsAttributed:   "events.attributed.v1",
		Campaigns:          "campaigns.v1",
		Rejected:           "postbacks.rejected.v1",
		SKAN:               "skan.v1",
		Endpoints:          "endpoints.v1",
		Deliveries:         "deliveries.v1",
		ForwarderState:     "forwarder.state.v1",
		Partitions:         6,
		ReplicationFactor:  1,
		Retention:          14 * 24 * time.Hour,
	}
}

// Validate checks the section; keys are relative to kafka.topics.
func (t *Config) Validate() error {
	for key, name := range map[string]string{
		"clicks": t.Clicks, "impressions": t.Impressions, "installs_raw": t.InstallsRaw, "events_raw": t.EventsRaw,
		"installs_attributed": t.InstallsAttributed, "events_attributed": t.EventsAttributed,
		"campaigns": t.Campaigns, "rejected": t.Rejected, "skan": t.SKAN,
		"endpoints": t.Endpoints, "deliveries": t.Deliveries, "forwarder_state": t.ForwarderState,
	} {
		if name == "" {
			return config.Errorf(key, "must not be empty")
		}
	}
	if t.Partitions < 1 {
		return config.Errorf("partitions", "must be at least 1, got %d", t.Partitions)
	}
	if t.ReplicationFactor < 1 {
		return config.Errorf("replication_factor", "must be at least 1, got %d", t.ReplicationFactor)
	}
	if t.MinInsyncReplicas < 0 || t.MinInsyncReplicas > t.ReplicationFactor {
		return config.Errorf("min_insync_replicas", "must be 0 (derived) or 1..replication_factor (%d), got %d", t.ReplicationFactor, t.MinInsyncReplicas)
	}
	if t.Retention < time.Hour {
		return config.Errorf("retention", "must be at least 1h, got %s", t.Retention)
	}
	return nil
}

// ErrNotCoPartitioned wraps Ensure's error for a joined topic whose
// partition count differs from its spec: no retry fixes it.
var ErrNotCoPartitioned = errors.New("topics are not co-partitioned (every joined topic needs the same partition count)")

// Spec is one topic to create.
type Spec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs are topic-level configs (cleanup.policy, retention.ms, ...).
	Configs map[string]string
	// CoPartitioned topics must all have the same partition count: they are
	// joined by key in the attribution service.
	CoPartitioned bool
}

// Specs returns the topics of DESIGN.md from the configured names.
func Specs(t Config) []Spec {
	retention := strconv.FormatInt(t.Retention.Milliseconds(), 10)
	stream := func(name string, joined bool) Spec {
		return Spec{
			Name: name, Partitions: int32(t.Partitions), ReplicationFactor: int16(t.ReplicationFactor),
			Configs:       map[string]string{"cleanup.policy": "delete", "retention.ms": retention, "min.insync.replicas": minISR(t)},
			CoPartitioned: joined,
		}
	}
	compacted := func(name string) Spec {
		s := stream(name, false)
		s.Configs = map[string]string{"cleanup.policy": "compact", "min.insync.replicas": minISR(t)}
		return s
	}
	campaigns := compacted(t.Campaigns)
	return []Spec{
		stream(t.Clicks, true),
		stream(t.Impressions, true),
		stream(t.InstallsRaw, true),
		stream(t.EventsRaw, true),
		stream(t.InstallsAttributed, false),
		stream(t.EventsAttributed, false),
		campaigns,
		stream(t.Rejected, false),
		stream(t.SKAN, false),
		compacted(t.Endpoints),
		stream(t.Deliveries, false),
		compacted(t.ForwarderState),
	}
}

// minISR is kafka.topics.min_insync_replicas, or when 0 a value that keeps
// acks=all meaningful: with three replicas a write needs two.
func minISR(t Config) string {
	switch {
	case t.MinInsyncReplicas > 0:
		return strconv.Itoa(t.MinInsyncReplicas)
	case t.ReplicationFactor >= 3:
		return "2"
	default:
		return "1"
	}
}

// Result lists what Ensure did.
type Result struct {
	Created []string
	Existed []string
}

// Ensure creates the missing topics of specs and verifies the existing ones.
// It fails when a co-partitioned topic's partition count differs from its
// spec, or when a topic meant to be compacted is not.
func Ensure(ctx context.Context, adm *kadm.Client, specs []Spec) (Result, error) {
	var res Result
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return res, fmt.Errorf("list topics: %w", err)
	}
	for _, s := range specs {
		if d, ok := existing[s.Name]; ok && d.Err == nil {
			continue
		}
		configs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, s.ReplicationFactor, configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return res, fmt.Errorf("create topic %s (%d partitions, rf %d): %w", s.Name, s.Partitions, s.ReplicationFactor, err)
		}
		res.Created = append(res.Created, s.Name)
	}
	if existing, err = WaitVisible(ctx, adm, names); err != nil {
		return res, err
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return res, fmt.Errorf("describe topic configs: %w", err)
	}
	for _, s := range specs {
		d, ok := existing[s.Name]
		if !ok || d.Err != nil {
			return res, fmt.Errorf("topic %s missing after create: %v", s.Name, d.Err)
		}
		if !contains(res.Created, s.Name) {
			res.Existed = append(res.Existed, s.Name)
		}
		if s.CoPartitioned && int32(len(d.Partitions)) != s.Partitions {
			return res, fmt.Errorf("topic %s has %d partitions, want %d: %w (fix the topic or kafka.topics.partitions)",
				s.Name, len(d.Partitions), s.Partitions, ErrNotCoPartitioned)
		}
		if s.Configs["cleanup.policy"] == "compact" {
			rc, err := configs.On(s.Name, nil)
			if err != nil {
				return res, fmt.Errorf("describe %s: %w", s.Name, err)
			}
			for _, c := range rc.Configs {
				if c.Key != "cleanup.policy" {
					continue
				}
				if v := c.MaybeValue(); v != "compact" && v != "compact,delete" {
					return res, fmt.Errorf("topic %s must be compacted, has cleanup.policy=%q", s.Name, v)
				}
			}
		}
	}
	sort.Strings(res.Created)
	sort.Strings(res.Existed)
	return res, nil
}

// WaitVisible polls metadata until every topic is listed with its
// partitions, each with a leader: a just-created topic takes a moment to
// reach every broker, and a produce before that fails with
// UNKNOWN_TOPIC_OR_PARTITION.
func WaitVisible(ctx context.Context, adm *kadm.Client, names []string) (kadm.TopicDetails, error) {
	for {
		td, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return nil, fmt.Errorf("list topics: %w", err)
		}
		missing := ""
		for _, n := range names {
			if d, ok := td[n]; !ok || d.Err != nil || len(d.Partitions) == 0 || !led(d) {
				missing = n
				break
			}
		}
		if missing == "" {
			return td, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("topic %s not visible in metadata: %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// led reports whether every partition of d has a leader.
func led(d kadm.TopicDetail) bool {
	for _, p := range d.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
