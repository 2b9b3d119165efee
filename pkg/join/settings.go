package join

import (
	"time"

	"github.com/adtrack/postback/pkg/config"
)

// Settings are the state and transaction keys of the joins (the join
// section of the attribution service): every duration and count the
// stages run by. DefaultSettings documents the defaults.
type Settings struct {
	DedupWindow          time.Duration `mapstructure:"dedup_window" desc:"How long an event_id is remembered to drop MMP retries of installs and events."`
	LateAllowance        time.Duration `mapstructure:"late_allowance" desc:"Added to every window before touches expire from state: postbacks arrive this late after the install at most."`
	EventJoinWindow      time.Duration `mapstructure:"event_join_window" desc:"How long after its install an in-app event can still be joined to it."`
	EventGrace           time.Duration `mapstructure:"event_grace" desc:"How long an in-app event that arrived before its install waits for it (stream time) before it is published organic."`
	MaxCandidates        int           `mapstructure:"max_candidates" desc:"Latest device, IP+UA and impression touches carried per install (click flooding still counts all)."`
	ExpiryInterval       time.Duration `mapstructure:"expiry_interval" desc:"Stream time between two expiry runs over a partition's state."`
	AlignSlack           time.Duration `mapstructure:"align_slack" desc:"While a stage reads a backlog, how far (record time) one input partition may run ahead of the least advanced one; keeps installs behind the clicks that precede them after an outage."`
	TickInterval         time.Duration `mapstructure:"tick_interval" desc:"How often, while every stage has caught up with its inputs, stream time on every partition moves to the wall clock minus tick_lag, so grace deadlines and expiry come on partitions that receive nothing (quiet hours, low-traffic apps). 0 disables it: stream time then moves only with records."`
	TickLag              time.Duration `mapstructure:"tick_lag" desc:"How far behind the wall clock ticks put stream time: a postback accepted by ingest reaches Kafka within it."`
	InstanceID           string        `mapstructure:"instance_id" desc:"Names this instance in the stages' transactional ids (<group>.<stage>.<instance_id>) and as their static group member: stable across restarts and unique per instance (e.g. the pod name of a StatefulSet), so a restarted instance takes its partitions back and fences its predecessor's open transactions at once. Empty: an id kept in <state_dir>/instance-id, created on first start."`
	TransactionTimeout   time.Duration `mapstructure:"transaction_timeout" desc:"Kafka transaction timeout: the broker aborts a stage's transaction left open this long (crashed instance with another instance id)."`
	CommitInterval       time.Duration `mapstructure:"commit_interval" desc:"Longest a stage's transaction collects records before it commits; it commits sooner when nothing more is waiting. Each of the four hops adds at most this to an install's latency; longer means fewer, larger transactions for the broker."`
	StallTimeout         time.Duration `mapstructure:"stall_timeout" desc:"How long a stage may go without progress while it has work (records waiting, a restore, a commit, a Kafka session to rebuild) before /readyz fails naming it and attribution_stage_ready drops to 0."`
	SessionTimeout       time.Duration `mapstructure:"session_timeout" desc:"Consumer-group session timeout: how long a dead instance keeps its partitions (6s..5m)."`
	MaxPollRecords       int           `mapstructure:"max_poll_records" desc:"Records per poll, hence per transaction, per stage."`
	CacheSize            int64         `mapstructure:"cache_size" desc:"Bytes of the block cache shared by every state store of the process: with the memtables, what the state costs in memory whatever the days of traffic held."`
	RepartitionRetention time.Duration `mapstructure:"repartition_retention" desc:"retention.ms of the internal repartition topics the service creates."`
}

// DefaultSettings returns the service's defaults.
func DefaultSettings() Settings {
	return Settings{
		DedupWindow:          72 * time.Hour,
		LateAllowance:        24 * time.Hour,
		EventJoinWindow:      30 * 24 * time.Hour,
		EventGrace:           10 * time.Minute,
		MaxCandidates:        16,
		ExpiryInterval:       time.Minute,
		AlignSlack:           100 * time.Millisecond,
		TickInterval:         time.Second,
		TickLag:              5 * time.Second,
		TransactionTimeout:   30 * time.Second,
		CommitInterval:       100 * time.Millisecond,
		StallTimeout:         30 * time.Second,
		SessionTimeout:       15 * time.Second,
		MaxPollRecords:       2000,
		CacheSize:            64 << 20,
		RepartitionRetention: 7 * 24 * time.Hour,
	}
}

// Validate checks the settings; keys are named from the service's root
// (join.dedup_window).
func (j *Settings) Validate() error {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"join.dedup_window", j.DedupWindow}, {"join.late_allowance", j.LateAllowance}, {"join.event_join_window", j.EventJoinWindow},
		{"join.event_grace", j.EventGrace}, {"join.expiry_interval", j.ExpiryInterval}, {"join.transaction_timeout", j.TransactionTimeout},
		{"join.repartition_retention", j.RepartitionRetention}} {
		if d.v < time.Second {
			return config.Errorf(d.key, "must be at least 1s, got %v", d.v)
		}
	}
	if j.AlignSlack < time.Millisecond || j.AlignSlack > time.Minute {
		return config.Errorf("join.align_slack", "must be within 1ms..1m, got %v", j.AlignSlack)
	}
	if j.CommitInterval < time.Millisecond || j.CommitInterval > 10*time.Second {
		return config.Errorf("join.commit_interval", "must be within 1ms..10s, got %v", j.CommitInterval)
	}
	if j.CommitInterval >= j.TransactionTimeout {
		return config.Errorf("join.commit_interval", "must be below join.transaction_timeout (%v), got %v", j.TransactionTimeout, j.CommitInterval)
	}
	if j.StallTimeout < 5*time.Second {
		return config.Errorf("join.stall_timeout", "must be at least 5s, got %v", j.StallTimeout)
	}
	if j.TickInterval < 0 || (j.TickInterval > 0 && (j.TickInterval < 100*time.Millisecond || j.TickLag < 0 || j.TickLag > time.Hour)) {
		return config.Errorf("join.tick_interval", "must be 0 (off) or at least 100ms, with tick_lag within 0..1h; got %v and %v", j.TickInterval, j.TickLag)
	}
	if j.TransactionTimeout > 80*time.Second {
		return config.Errorf("join.transaction_timeout", "must be at most 80s (state restore waits 90s for a crashed owner's transaction), got %v", j.TransactionTimeout)
	}
	if j.SessionTimeout < 6*time.Second || j.SessionTimeout > 5*time.Minute {
		return config.Errorf("join.session_timeout", "must be within 6s..5m, got %v", j.SessionTimeout)
	}
	if j.MaxCandidates < 1 || j.MaxPollRecords < 1 {
		return config.Errorf("join", "max_candidates and max_poll_records must be at least 1")
	}
	if j.CacheSize < 1<<20 {
		return config.Errorf("join.cache_size", "must be at least 1 MiB, got %d", j.CacheSize)
	}
	return nil
}
