package stage

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/statestore"
)

// Inspector is implemented by processors that export gauges of their
// state (entries waiting in a grace buffer, say). The stage calls
// InspectState from its loop about every Config.StatsInterval, and once more
// with no stores when its session ends, with the store of every
// partition it owns: stores hold what committed transactions wrote. The
// call runs between polls, so keep it short; an error is logged.
type Inspector interface {
	InspectState(stores map[int32]*statestore.Store) error
}

// collectStats refreshes the state gauges when Config.StatsInterval has
// passed since the last time, or at once with force. Pebble's counters are
// cheap; an Inspector may scan keys, hence the interval.
func (r *runner) collectStats(force bool) {
	if !force && time.Since(r.statsAt) < r.cfg.StatsInterval {
		return
	}
	r.statsAt = time.Now()
	var use statestore.Usage
	for _, s := range r.stores {
		u := s.Usage()
		use.Disk += u.Disk
		use.Live += u.Live
	}
	r.cfg.Metrics.stateDisk.WithLabelValues(r.cfg.Name).Set(float64(use.Disk))
	r.cfg.Metrics.stateLive.WithLabelValues(r.cfg.Name).Set(float64(use.Live))
	if in, ok := r.p.(Inspector); ok {
		if err := in.InspectState(r.stores); err != nil {
			r.cfg.Logger.Warn("state gauges not updated", "stage", r.cfg.Name, "err", err)
		}
	}
}

// setLag records how far behind its high watermark a polled partition is.
func (r *runner) setLag(ftp kgo.FetchTopicPartition) {
	next := ftp.Records[len(ftp.Records)-1].Offset + 1
	lag := max(ftp.HighWatermark-next, 0)
	r.cfg.Metrics.lag.WithLabelValues(r.cfg.Name, ftp.Topic, strconv.Itoa(int(ftp.Partition))).Set(float64(lag))
}

// forgetLag drops the lag series of partition p of every input: another
// member reports it now.
func (r *runner) forgetLag(p int32) {
	for _, t := range r.cfg.Inputs {
		r.cfg.Metrics.lag.DeleteLabelValues(r.cfg.Name, t, strconv.Itoa(int(p)))
	}
}

// observeFreshness records, at the commit of t, how old each record it
// processed is (ticks are not records of the pipeline's data).
func (r *runner) observeFreshness(t *txn) {
	h := r.cfg.Metrics.freshness.WithLabelValues(r.cfg.Name)
	now := time.Now().UnixNano()
	for _, ts := range t.stamps {
		h.Observe(float64(now-ts) / 1e9)
	}
}
