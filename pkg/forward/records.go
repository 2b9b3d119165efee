package forward

import (
	"time"

	"github.com/adtrack/postback/pkg/money"
)

// Meta describes a delivery in the delivery log and the delivery state.
type Meta struct {
	DeliveryID  string    `json:"delivery_id"`
	EndpointID  string    `json:"endpoint_id"`
	Publisher   string    `json:"publisher,omitempty"`
	Kind        string    `json:"kind"`
	EventID     string    `json:"event_id"`
	AppID       string    `json:"app_id"`
	CampaignID  string    `json:"campaign_id,omitempty"`
	MediaSource string    `json:"media_source,omitempty"`
	ConvertedAt time.Time `json:"converted_at"` // the conversion's attributed_at
}

// Attempt is one record of the delivery log (topic kafka.topics.deliveries,
// key delivery_id, table postback_deliveries): one per attempt, plus one
// for a delivery dropped without an attempt.
type Attempt struct {
	Meta
	Attempt     int          `json:"attempt"` // 1 for the first; 0 when dropped unattempted
	AttemptedAt time.Time    `json:"attempted_at"`
	LatencyMS   int64        `json:"latency_ms"`
	Method      string       `json:"method"`
	Host        string       `json:"host"` // never the full URL: it may carry device ids or tokens
	Status      int          `json:"status"`
	Error       string       `json:"error,omitempty"`
	Response    string       `json:"response,omitempty"` // the start of the response body
	Outcome     string       `json:"outcome"`            // delivered, retrying, failed, expired, dropped
	Final       bool         `json:"final"`
	NextAt      *time.Time   `json:"next_attempt_at,omitempty"`
	Payout      money.Amount `json:"payout"`
	Currency    string       `json:"payout_currency,omitempty"`
}

// State statuses.
const (
	StateDone     = "done"     // final: never sent again
	StateRetrying = "retrying" // waiting in the retry queue until Due
)

// Source is the input record a delivery comes from.
type Source struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// State is one record of the forwarder's delivery state (topic
// kafka.topics.forwarder_state, compacted, key delivery_id, partition =
// the source record's partition): the durable delivered-set and retry
// queue. A tombstone forgets a done delivery once its source offset is
// committed.
type State struct {
	Meta
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	FirstAt  time.Time `json:"first_at,omitzero"`
	Due      time.Time `json:"due,omitzero"`
	Source   Source    `json:"source"`
	Request  *Request  `json:"request,omitempty"` // retrying only
}

// DoneSetKeyPrefix starts the key of every DoneSet record on the delivery
// state topic; delivery ids (hex) never contain its slash.
const DoneSetKeyPrefix = "done-set/"

// DoneSet is one record of the delivery state (key DoneSetKeyPrefix and a
// unique suffix) holding many deliveries of one input partition that were
// final at their first attempt: one state write settles all of them
// instead of one write each. A delivery that was ever retrying keeps its
// own State record. A tombstone forgets the set once the committed offset
// passes Last.
type DoneSet struct {
	Topic     string      `json:"topic"`
	Partition int32       `json:"partition"`
	Last      int64       `json:"last_offset"` // the highest Offset of Done
	Done      []DoneEntry `json:"done"`
}

// DoneEntry is one final delivery of a DoneSet.
type DoneEntry struct {
	DeliveryID string `json:"delivery_id"`
	Offset     int64  `json:"offset"` // of its input record
}
