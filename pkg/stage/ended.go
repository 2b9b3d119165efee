package stage

// The transactions a stage ended in a way that fixes their outcome, kept
// so that one Kafka leaves open (hanging.go) can be given its marker.

// endedTxn is one transaction of a transactional id, identified by its
// producer id and epoch, and how it ended.
type endedTxn struct {
	pe        producerEpoch
	committed bool // the broker accepted its commit; else it was abandoned
}

// endedPerTxnID bounds what is kept per transactional id: a hanging
// transaction is one of the last before a broker went away, found within
// the stall timeout.
const endedPerTxnID = 256

func (p *Prober) record(txnID string, e endedTxn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.ended[txnID]
	if len(l) >= endedPerTxnID {
		l = append(l[:0], l[len(l)-endedPerTxnID/2:]...)
	}
	p.ended[txnID] = append(l, e)
}

// abandon records that the transaction of producer id at epoch, of
// transactional id txnID, ended without a commit request: Kafka can only
// have aborted it.
func (p *Prober) abandon(id int64, epoch int16, txnID string) {
	p.record(txnID, endedTxn{pe: producerEpoch{id, epoch}})
}

// committed records that the broker accepted the commit of the
// transaction of producer id at epoch, of txnID. Only for an epoch that
// names one transaction (transactions v2, its end seen to bump the epoch):
// under v1 a later transaction of the session shares it.
func (p *Prober) committed(id int64, epoch int16, txnID string) {
	p.record(txnID, endedTxn{pe: producerEpoch{id, epoch}, committed: true})
}

// endedAs returns how this process ended the transaction of producer id
// at epoch, and its transactional id; ok is false if it was not recorded.
func (p *Prober) endedAs(id int64, epoch int16) (txnID string, e endedTxn, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for txnID, l := range p.ended {
		for i := len(l) - 1; i >= 0; i-- {
			if l[i].pe == (producerEpoch{id, epoch}) {
				return txnID, l[i], true
			}
		}
	}
	return "", endedTxn{}, false
}
