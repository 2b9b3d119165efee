package join

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/stage"
)

// Stream time moves with records: a partition that receives nothing would
// never reach the grace deadline of the install waiting on it. The ticker
// closes that gap without breaking replays. Every TickInterval it asks
// the broker whether every stage has caught up with every data input (no
// committed record past any group's committed offset). Only then is the
// wall clock a safe lower bound for what can still arrive: sources stamp
// records when they accept them, and nothing older is in flight between
// the stages. It then writes one tick per partition of the ticks topic,
// TickLag behind the wall clock; each stage reads the ticks topic as an
// input and moves that partition's stream time to the tick's time in its
// own transaction (stage.Ticker), so a tick's effects are exactly once
// and a replay of the topics meets the same ticks in the same order. While
// any backlog remains, records drive stream time as before.

// tick writes ticks until ctx is done, asking prober for the backlogs.
func (j *Joiner) tick(ctx context.Context, prober *stage.Prober, partitions int32) {
	cl, err := kgo.NewClient(append(j.conn("ticks"), kgo.DefaultProduceTopic(j.ticks), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		j.cfg.Logger.Error("ticks disabled: cannot create a client", "err", err)
		return
	}
	defer cl.Close()
	t := time.NewTicker(j.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := j.tickOnce(ctx, prober, cl, partitions); err != nil {
			j.cfg.Logger.Debug("no tick", "err", err)
		}
	}
}

// tickOnce writes one tick per partition if the pipeline is caught up.
func (j *Joiner) tickOnce(ctx context.Context, prober *stage.Prober, cl *kgo.Client, partitions int32) error {
	ctx, cancel := context.WithTimeout(ctx, j.cfg.TickInterval+5*time.Second)
	defer cancel()
	for _, name := range Stages {
		c := j.StageConfig(name, "")
		inputs := slices.DeleteFunc(slices.Clone(c.Inputs), func(t string) bool { return t == j.ticks })
		pos, err := prober.Backlog(ctx, c.GroupID(), inputs, nil)
		if err != nil {
			return err
		}
		for _, q := range pos {
			if q.Backlog {
				return fmt.Errorf("stage %s has records waiting on %s/%d", name, q.Topic, q.Partition)
			}
		}
	}
	at := time.Now().Add(-j.cfg.TickLag).UTC().Truncate(time.Millisecond)
	recs := make([]*kgo.Record, partitions)
	for p := range recs {
		recs[p] = &kgo.Record{Partition: int32(p), Timestamp: at}
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}
