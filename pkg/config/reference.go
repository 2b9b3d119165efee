package config

import (
	"fmt"
	"strings"
)

// Service pairs a service name with a pointer to its default config.
type Service struct {
	Name    string
	Summary string
	Config  Validator
}

// Reference renders the generated part of docs/configuration.md: one table
// per service listing every key, its env var, type and default.
func Reference(services []Service) string {
	var b strings.Builder
	for i, s := range services {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(Markdown(fmt.Sprintf("%s (%s)", s.Name, s.Summary), s.Config))
	}
	return b.String()
}

// Example renders config.example.yaml: every key of every service with its
// default and description, commented out so the file documents rather than
// overrides. Each service reads its own file; copy the part you need.
func Example(services []Service) string {
	var b strings.Builder
	b.WriteString("# Generated from pkg/servicecfg by `make docs`; do not edit by hand.\n")
	b.WriteString("# Every key with its default. Each service reads one YAML file (--config or\n")
	b.WriteString("# POSTBACK_CONFIG); copy the part for your service and uncomment what you change.\n")
	b.WriteString("# Env vars (POSTBACK_<KEY>) override the file, flags (--<key>) override both.\n")
	for _, s := range services {
		fmt.Fprintf(&b, "\n# ---- %s: %s ----\n", s.Name, s.Summary)
		var prev []string
		for _, f := range Fields(s.Config) {
			parts := strings.Split(f.Key, ".")
			for d := 0; d < len(parts)-1; d++ {
				if d >= len(prev)-1 || prev[d] != parts[d] {
					fmt.Fprintf(&b, "# %s%s:\n", strings.Repeat("  ", d), parts[d])
				}
			}
			indent := strings.Repeat("  ", len(parts)-1)
			fmt.Fprintf(&b, "# %s# %s\n# %s%s: %s\n", indent, f.Desc, indent, parts[len(parts)-1], yamlValue(f))
			prev = parts
		}
	}
	return b.String()
}

func yamlValue(f Field) string {
	switch {
	case strings.HasPrefix(f.Type, "list of"):
		if f.Default == "" {
			return "[]"
		}
		items := strings.Split(f.Default, ",")
		for i := range items {
			items[i] = fmt.Sprintf("%q", items[i])
		}
		return "[" + strings.Join(items, ", ") + "]"
	case strings.HasPrefix(f.Type, "map of"):
		return "{}"
	case f.Type == "string" || f.Type == "duration":
		return fmt.Sprintf("%q", f.Default)
	}
	return f.Default
}
