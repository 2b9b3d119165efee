package stage

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaReason labels a failed Kafka call for the metrics.
func kafkaReason(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &fatalError{}):
		return "fatal"
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.InvalidProducerIDMapping):
		return "fenced"
	case errors.Is(err, kerr.NotCoordinator), errors.Is(err, kerr.CoordinatorNotAvailable),
		errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.ConcurrentTransactions):
		return "coordinator"
	case errors.Is(err, kerr.InvalidTxnState), errors.Is(err, kerr.TransactionAbortable):
		return "transaction_state"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kerr.RequestTimedOut), errors.Is(err, kgo.ErrRecordTimeout):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, kgo.ErrClientClosed),
		isNetErr(err), kgo.IsRetryableBrokerErr(err):
		return "broker_unavailable"
	case errors.As(err, &ke):
		return "kafka_error"
	}
	return "other"
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}
