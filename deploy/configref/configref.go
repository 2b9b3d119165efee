// Package configref reads the configuration reference, the generated tables
// of docs/configuration.md, so that the tests of the deployment files
// (deploy/k8s, docker-compose.yml) can check every config key and POSTBACK_*
// env var they set against what the service they configure documents.
//
//	ref, err := configref.Load("../../docs/configuration.md")
//	err = ref.CheckEnv("sink", "POSTBACK_CLICKHOUSE_ADDR")
//	err = ref.CheckYAML("ingest", configFile) // every unknown key, joined
package configref

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Key is one row of a service's table in the reference.
type Key struct {
	Name    string // kafka.brokers
	Env     string // POSTBACK_KAFKA_BROKERS
	Type    string // list of string, map of object, ...
	Default string // as documented, lists comma-separated; "" when none
	Meaning string
}

// yamlOnly reports whether the key is a map that env vars and flags cannot
// address (docs/configuration.md: "YAML only").
func (k Key) yamlOnly() bool { return strings.HasPrefix(k.Type, "map of ") }

// Reference is the documented keys of every service.
type Reference struct {
	keys map[string]map[string]Key // service -> key name -> key
}

const (
	beginMarker = "<!-- BEGIN GENERATED"
	endMarker   = "<!-- END GENERATED"
)

// Load reads and parses the reference at path (docs/configuration.md).
func Load(path string) (*Reference, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config reference: %w", err)
	}
	ref, err := Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("config reference %s: %w", path, err)
	}
	return ref, nil
}

// Parse reads the generated part of docs/configuration.md: one
// "### <service> (<summary>)" heading per service, each followed by a table
// whose rows are "| `key` | `ENV` | type | default | meaning |".
func Parse(doc []byte) (*Reference, error) {
	text := string(doc)
	start := strings.Index(text, beginMarker)
	end := strings.Index(text, endMarker)
	if start < 0 || end < start {
		return nil, fmt.Errorf("no %q ... %q section", beginMarker, endMarker)
	}
	ref := &Reference{keys: map[string]map[string]Key{}}
	service := ""
	for i, line := range strings.Split(text[start:end], "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "### "):
			service, _, _ = strings.Cut(strings.TrimPrefix(line, "### "), " ")
			if _, dup := ref.keys[service]; dup {
				return nil, fmt.Errorf("generated line %d: service %q has two tables", i+1, service)
			}
			ref.keys[service] = map[string]Key{}
		case strings.HasPrefix(line, "| `"):
			if service == "" {
				return nil, fmt.Errorf("generated line %d: a key row before any service heading", i+1)
			}
			k, err := parseRow(line)
			if err != nil {
				return nil, fmt.Errorf("generated line %d: %w", i+1, err)
			}
			ref.keys[service][k.Name] = k
		}
	}
	if len(ref.keys) == 0 {
		return nil, errors.New("no service tables in the generated section")
	}
	for s, keys := range ref.keys {
		if len(keys) == 0 {
			return nil, fmt.Errorf("service %q has no keys", s)
		}
	}
	return ref, nil
}

func parseRow(line string) (Key, error) {
	cells := strings.Split(strings.Trim(line, "|"), "|")
	if len(cells) < 5 {
		return Key{}, fmt.Errorf("want 5 cells (key, env, type, default, meaning), got %d: %s", len(cells), line)
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	k := Key{
		Name:    strings.Trim(cells[0], "`"),
		Env:     strings.Trim(cells[1], "`"),
		Type:    cells[2],
		Default: strings.Trim(cells[3], "`"),
		Meaning: strings.Join(cells[4:], "|"),
	}
	if k.Name == "" || !strings.HasPrefix(k.Env, "POSTBACK_") {
		return Key{}, fmt.Errorf("row without a key or a POSTBACK_ env var: %s", line)
	}
	return k, nil
}

// Services returns the documented services, sorted.
func (r *Reference) Services() []string {
	out := make([]string, 0, len(r.keys))
	for s := range r.keys {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Key returns the documented key name of service.
func (r *Reference) Key(service, name string) (Key, bool) {
	k, ok := r.keys[service][name]
	return k, ok
}

// EnvKey returns the key that env var name sets for service, or an error
// when the service has no such key or the key is YAML only.
func (r *Reference) EnvKey(service, name string) (Key, error) {
	keys, ok := r.keys[service]
	if !ok {
		return Key{}, fmt.Errorf("env %s: no service %q in the config reference", name, service)
	}
	for _, k := range keys {
		if k.Env != name {
			continue
		}
		if k.yamlOnly() {
			return Key{}, fmt.Errorf("env %s: %s of %s is a map, set in the YAML file only", name, k.Name, service)
		}
		return k, nil
	}
	return Key{}, fmt.Errorf("env %s: not the env var of any key of %s in the config reference", name, service)
}

// CheckEnv returns an error unless name is the env var of a key of service
// that env vars can set.
func (r *Reference) CheckEnv(service, name string) error {
	_, err := r.EnvKey(service, name)
	return err
}

// CheckYAML returns every key of the YAML config file doc that service does
// not document, joined, or nil. Entries of YAML-only maps are checked against
// their documented sub-keys: ingest.sources.<mmp>.* against the list in the
// key's meaning, apps.<app>.* against the rules.* keys.
func (r *Reference) CheckYAML(service string, doc []byte) error {
	if _, ok := r.keys[service]; !ok {
		return fmt.Errorf("no service %q in the config reference", service)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(doc, &tree); err != nil {
		return fmt.Errorf("%s config: %w", service, err)
	}
	var errs []error
	r.walk(service, "", tree, &errs)
	return errors.Join(errs...)
}

// walk checks the mapping m found at prefix.
func (r *Reference) walk(service, prefix string, m map[string]any, errs *[]error) {
	for _, name := range sortedKeys(m) {
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		v := m[name]
		if k, ok := r.keys[service][key]; ok {
			if err := r.checkValue(service, k, v); err != nil {
				*errs = append(*errs, err)
			}
			continue
		}
		if !r.isSection(service, key) {
			*errs = append(*errs, fmt.Errorf("%s: key %s is not in the config reference", service, key))
			continue
		}
		sub, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, fmt.Errorf("%s: %s is a section, want a mapping, got %T", service, key, v))
			continue
		}
		r.walk(service, key, sub, errs)
	}
}

// isSection reports whether some documented key of service lies under key.
func (r *Reference) isSection(service, key string) bool {
	for name := range r.keys[service] {
		if strings.HasPrefix(name, key+".") {
			return true
		}
	}
	return false
}

// checkValue checks the value v of the documented key k: a leaf is no
// mapping, and the entries of a YAML-only map have the documented shape.
func (r *Reference) checkValue(service string, k Key, v any) error {
	switch {
	case k.Type == "map of object":
		entries, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %s is a map, got %T", service, k.Name, v)
		}
		allowed, err := r.entryKeys(service, k)
		if err != nil {
			return err
		}
		var errs []error
		for _, entry := range sortedKeys(entries) {
			fields, ok := entries[entry].(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s.%s is an object, got %T", service, k.Name, entry, entries[entry]))
				continue
			}
			for _, f := range sortedKeys(fields) {
				if !slices.Contains(allowed, f) {
					errs = append(errs, fmt.Errorf("%s: key %s.%s.%s is not in the config reference (documented: %s)",
						service, k.Name, entry, f, strings.Join(allowed, ", ")))
				}
			}
		}
		return errors.Join(errs...)
	case strings.HasPrefix(k.Type, "map of "):
		entries, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %s is a map, got %T", service, k.Name, v)
		}
		for _, entry := range sortedKeys(entries) {
			if _, nested := entries[entry].(map[string]any); nested {
				return fmt.Errorf("%s: %s.%s is a %s entry, got a mapping", service, k.Name, entry, strings.TrimPrefix(k.Type, "map of "))
			}
		}
		return nil
	default:
		if _, nested := v.(map[string]any); nested {
			return fmt.Errorf("%s: %s is a %s, got a mapping", service, k.Name, k.Type)
		}
		return nil
	}
}

// entryKeys returns the fields documented for one entry of the map of
// objects k. The reference gives them in two ways: listed in the meaning
// after the entry names ("keyed by MMP (...): tokens (or tokens_file, one
// token per line), app_tokens, ... ."), where "(or X ...)" names another
// field, or, for apps, as "each entry replaces every rules.* key".
func (r *Reference) entryKeys(service string, k Key) ([]string, error) {
	if _, section, ok := strings.Cut(k.Meaning, "every "); ok && strings.Contains(k.Meaning, ".* key") {
		section, _, _ = strings.Cut(section, ".*")
		var out []string
		for name := range r.keys[service] {
			if rest, ok := strings.CutPrefix(name, section+"."); ok {
				out = append(out, rest)
			}
		}
		if len(out) > 0 {
			sort.Strings(out)
			return out, nil
		}
	}
	if _, list, ok := strings.Cut(k.Meaning, "): "); ok {
		list, _, _ = strings.Cut(list, ".")
		var out []string
		for _, item := range splitTopLevel(list) {
			name, rest, _ := strings.Cut(strings.TrimSpace(item), " ")
			out = append(out, name)
			if _, alt, ok := strings.Cut(rest, "(or "); ok {
				alt, _, _ = strings.Cut(alt, ",")
				alt, _, _ = strings.Cut(alt, " ")
				out = append(out, strings.TrimRight(alt, ")"))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: %s: its meaning lists no entry fields to check against", service, k.Name)
}

// Effective returns the configuration service runs with, as the loader
// layers it: the documented defaults, then the YAML file doc, then the
// POSTBACK_* entries of env. Keys are flattened
// (ingest.sources.adjust.tokens_file); lists are comma-separated as in env
// vars. It checks nothing: keys of doc the reference does not document are
// kept, and env vars it does not document are left out (CheckYAML and
// CheckEnv name both), so the other checks of a test still run.
func (r *Reference) Effective(service string, doc []byte, env map[string]string) (map[string]string, error) {
	if _, ok := r.keys[service]; !ok {
		return nil, fmt.Errorf("no service %q in the config reference", service)
	}
	out := map[string]string{}
	for name, k := range r.keys[service] {
		if !k.yamlOnly() {
			out[name] = k.Default
		}
	}
	var tree map[string]any
	if err := yaml.Unmarshal(doc, &tree); err != nil {
		return nil, fmt.Errorf("%s config: %w", service, err)
	}
	flatten("", tree, out)
	for _, name := range sortedKeys(env) {
		if k, err := r.EnvKey(service, name); err == nil {
			out[k.Name] = env[name]
		}
	}
	return out, nil
}

// flatten writes the scalar leaves of m into out under their dotted paths.
func flatten(prefix string, m map[string]any, out map[string]string) {
	for name, v := range m {
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		switch v := v.(type) {
		case map[string]any:
			flatten(key, v, out)
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			out[key] = strings.Join(parts, ",")
		case nil:
			out[key] = ""
		default:
			out[key] = fmt.Sprint(v)
		}
	}
}

// splitTopLevel splits s at the commas outside parentheses.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FlagValue returns the value of --name=V or --name V in a command's args,
// or "".
func FlagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// SharedKey reports whether every service of one deployment must have the
// same value of key as the others: the same Kafka, topic names and
// ClickHouse, and the replication factor of the topics bootstrap creates
// for attribution's internal topics. Partitions and retention concern only
// the topics bootstrap creates.
func SharedKey(key, service string) bool {
	switch {
	case key == "kafka.topics.partitions" || key == "kafka.topics.retention":
		return false
	case key == "kafka.topics.replication_factor":
		return service == "postbackctl" || service == "attribution"
	default:
		return key == "kafka.brokers" || strings.HasPrefix(key, "kafka.topics.") ||
			key == "clickhouse.addr" || key == "clickhouse.database"
	}
}
