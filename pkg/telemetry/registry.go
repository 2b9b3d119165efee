package telemetry

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry is a Prometheus registry that also remembers the name of every
// metric described by the collectors registered through it, so the metrics
// a service exports can be listed before any of them has a value (a vector
// with no series yet gathers nothing). The dashboard and alert rule tests
// check their queries against these names.
//
// It is a prometheus.Registerer and a prometheus.Gatherer; register
// through it, not through the embedded registry, or the names are missed.
type Registry struct {
	*prometheus.Registry

	mu    sync.Mutex
	names map[string]bool
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
}

// Register registers c and records the names of the metrics it describes.
func (r *Registry) Register(c prometheus.Collector) error {
	names, err := describedNames(c)
	if err != nil {
		return err
	}
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	for _, n := range names {
		r.names[n] = true
	}
	r.mu.Unlock()
	return nil
}

// MustRegister registers every collector and panics on the first failure,
// like prometheus.Registry.MustRegister.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Names returns the sorted names of the metric families registered so far
// (a histogram's name, not its _bucket, _sum and _count series). Names of
// unregistered collectors are kept: a collector registered again later
// (a reconnecting client's plugin) exports the same names.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.names))
	for n := range r.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// describedNames returns the fully qualified names of the descriptors c
// describes.
func describedNames(c prometheus.Collector) ([]string, error) {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	var names []string
	var err error
	for d := range ch {
		n, nerr := descName(d)
		if nerr != nil && err == nil {
			err = nerr
		}
		names = append(names, n)
	}
	return names, err
}

// descName reads a descriptor's fully qualified name. client_golang has no
// accessor for it; its String form, stable since 2015, starts with it.
func descName(d *prometheus.Desc) (string, error) {
	s := d.String()
	const prefix = `Desc{fqName: `
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", fmt.Errorf("telemetry: cannot read the metric name of descriptor %s", s)
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", fmt.Errorf("telemetry: cannot read the metric name of descriptor %s: %w", s, err)
	}
	name, err := strconv.Unquote(q)
	if err != nil {
		return "", fmt.Errorf("telemetry: cannot read the metric name of descriptor %s: %w", s, err)
	}
	return name, nil
}
