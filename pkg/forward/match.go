package forward

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/segmentio/encoding/json"
)

// Matches reports whether ep receives conversion c.
func (ep *Endpoint) Matches(c Conversion) bool {
	if !c.Forwardable() || !slices.Contains(ep.Match.Kinds, c.Kind) {
		return false
	}
	at := c.attribution()
	m := &ep.Match
	if !anyOf(m.MediaSources, at.MediaSource) || !anyOf(m.Campaigns, at.CampaignID) ||
		!anyOf(m.SiteIDs, at.SiteID) || !anyOf(m.Apps, c.AppID()) {
		return false
	}
	if c.Kind == KindEvent && len(m.EventNames) > 0 {
		e := c.Event
		if !slices.Contains(m.EventNames, string(e.Name)) &&
			!slices.ContainsFunc(m.EventNames, func(n string) bool { return strings.EqualFold(n, e.OriginalName) }) {
			return false
		}
	}
	return true
}

func anyOf(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v)
}

// Registry is a concurrency-safe set of endpoints by id, kept equal to the
// endpoints topic by a follower (campaigntopic.NewTableFollower): it is a
// campaigntopic.Table.
type Registry struct {
	egress *Egress
	mu     sync.RWMutex
	m      map[string]*Endpoint
	// sorted is the endpoints by id, rebuilt on change: Match runs per
	// record, changes are rare.
	sorted []*Endpoint
}

// NewRegistry returns an empty registry whose records are validated
// against egress.
func NewRegistry(egress *Egress) *Registry {
	return &Registry{egress: egress, m: map[string]*Endpoint{}}
}

// Apply puts the endpoint JSON-encoded in value under id, or deletes id
// when value is empty; an invalid endpoint is refused (and the previous
// version of id kept).
func (r *Registry) Apply(id string, value []byte) error {
	if len(value) == 0 {
		r.Delete(id)
		return nil
	}
	var ep Endpoint
	if err := json.Unmarshal(value, &ep); err != nil {
		return fmt.Errorf("undecodable endpoint: %w", err)
	}
	if err := Validate(&ep, r.egress); err != nil {
		return err
	}
	if ep.ID != id {
		return fmt.Errorf("endpoint_id %q differs from the key %q", ep.ID, id)
	}
	r.Put(ep)
	return nil
}

// Put adds or replaces an endpoint.
func (r *Registry) Put(ep Endpoint) {
	r.mu.Lock()
	r.m[ep.ID] = &ep
	r.rebuild()
	r.mu.Unlock()
}

// Delete removes an endpoint.
func (r *Registry) Delete(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.rebuild()
	r.mu.Unlock()
}

func (r *Registry) rebuild() {
	r.sorted = r.sorted[:0:0]
	for _, ep := range r.m {
		r.sorted = append(r.sorted, ep)
	}
	sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].ID < r.sorted[j].ID })
}

// Get returns the endpoint with id; it must not be modified.
func (r *Registry) Get(id string) (*Endpoint, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ep, ok := r.m[id]
	return ep, ok
}

// Len returns the number of endpoints.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// Match returns the endpoints that receive c, by id; they must not be modified.
func (r *Registry) Match(c Conversion) []*Endpoint {
	if !c.Forwardable() {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Endpoint
	for _, ep := range r.sorted {
		if ep.Matches(c) {
			out = append(out, ep)
		}
	}
	return out
}
