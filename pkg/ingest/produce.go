package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/twmb/franz-go/pkg/kgo"
)

// encodeProduce encodes v into a pooled buffer and produces it. The buffer
// goes back to the pool only once Kafka answered: a record that timed out
// here may still be in the client's buffer, so its bytes are left alone.
func (s *Server) encodeProduce(ctx context.Context, topic string, key []byte, v any) error {
	bp := s.bufs.Get().(*[]byte)
	// No HTML escaping: the values are for machines, and it is cheaper.
	b, err := json.Append((*bp)[:0], v, 0)
	if err != nil {
		s.bufs.Put(bp)
		return fmt.Errorf("encoding the record: %w", err)
	}
	err = s.produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: b})
	if err == nil {
		*bp = b
		s.bufs.Put(bp)
	}
	return err
}

// errTimeout is returned when Kafka did not acknowledge in time.
var errTimeout = errors.New("kafka did not acknowledge in time")

// produce hands rec to the client and waits for Kafka's acknowledgement,
// at most timeout. The record is given the server's lifetime context, not
// the request's: franz-go fails a whole partition batch when the first
// record's context ends, so one impatient client must not fail the others.
// A record that times out here may still be written later; the caller
// answers 503 and the MMP's retry carries the same event_id, which the
// attribution service deduplicates.
func (s *Server) produce(ctx context.Context, rec *kgo.Record) error {
	start := time.Now()
	done := make(chan error, 1)
	s.cl.TryProduce(s.life, rec, func(_ *kgo.Record, err error) { done <- err })
	t := time.NewTimer(s.cfg.Ingest.Produce.Timeout)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-t.C:
		err = errTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.m.produceSeconds.WithLabelValues(rec.Topic).Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.produceFailures.WithLabelValues(rec.Topic, produceReason(err)).Inc()
	}
	return err
}

func produceReason(err error) string {
	switch {
	case errors.Is(err, kgo.ErrMaxBuffered):
		return "buffer_full"
	case errors.Is(err, errTimeout), errors.Is(err, kgo.ErrRecordTimeout):
		return "timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "client_gone"
	case errors.Is(err, kgo.ErrClientClosed):
		return "closing"
	}
	return "kafka_error"
}
