// Package config loads a service's typed configuration with viper from, in
// rising precedence: the defaults in the struct, a YAML file (--config or
// POSTBACK_CONFIG), environment variables (POSTBACK_ + the key upper-cased
// with dots as underscores, e.g. POSTBACK_KAFKA_BROKERS) and command-line
// flags (--kafka.brokers).
//
// Every key is declared once, on a struct field: its `mapstructure` tag is the
// key, its `desc` tag the documentation, its value in the defaults struct the
// default. The same walk produces the flags, the env bindings and
// docs/configuration.md, so the three cannot disagree.
//
// A string key whose name ends in _file (kafka.sasl.password_file) names a
// file holding the value of its sibling key (kafka.sasl.password), so
// secrets can come from a mounted file instead of YAML; a list sibling
// (tokens) takes one value per line. Load reads those files.
//
// The package is a leaf: the sections are declared by the packages they
// configure (kafkaconn, chconn, ingest, join, sink, ...), and
// pkg/servicecfg composes them into each service's configuration.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment variable the services read.
const EnvPrefix = "POSTBACK"

// Validator is a config struct that can check itself after loading. Errors
// must name the offending key (see KeyError).
type Validator interface {
	Validate() error
}

// KeyError is a configuration error attributed to one key.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("config key %s: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// Errorf returns a *KeyError for key with a formatted message.
func Errorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Within prefixes the key of a *KeyError with section (Within("kafka",
// err) turns tls.ca_file into kafka.tls.ca_file); other errors become a
// *KeyError for section. It returns nil for nil, so sections validate with
// keys relative to themselves and their parent names them.
func Within(section string, err error) error {
	if err == nil {
		return nil
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		return &KeyError{Key: section + "." + ke.Key, Err: ke.Err}
	}
	return &KeyError{Key: section, Err: err}
}

// Positive returns a *KeyError for key unless d > 0.
func Positive(key string, d time.Duration) error {
	if d <= 0 {
		return Errorf(key, "must be positive, got %s", d)
	}
	return nil
}

// ErrHelp is returned by Load when --help was asked for; usage was printed.
var ErrHelp = pflag.ErrHelp

// Field describes one configuration key.
type Field struct {
	Key     string // dotted key, e.g. kafka.brokers
	Env     string // environment variable
	Type    string // Go type, as shown to users
	Default string // default rendered as in YAML/env
	Desc    string
}

// Fields walks cfg (a pointer to a struct) and returns its keys in order of
// declaration, with their current values as defaults.
func Fields(cfg any) []Field {
	var out []Field
	walk(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value, sf reflect.StructField) {
		out = append(out, Field{
			Key:     key,
			Env:     EnvName(key),
			Type:    typeName(v.Type()),
			Default: render(v),
			Desc:    sf.Tag.Get("desc"),
		})
	})
	return out
}

// EnvName returns the environment variable that sets key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// walk calls fn for every leaf field of the struct v. Structs nest keys;
// maps, slices and scalars are leaves.
func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value, sf reflect.StructField)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
		fv := v.Field(i)
		if name == "-" {
			continue
		}
		if opts == "squash" {
			walk(fv, prefix, fn)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}) {
			walk(fv, key, fn)
			continue
		}
		fn(key, fv, sf)
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	case t.Kind() == reflect.Map:
		return "map of " + typeName(t.Elem())
	case t.Kind() == reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

func render(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = render(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, fmt.Sprint(k.Interface()))
		}
		sort.Strings(keys)
		return "{" + strings.Join(keys, ",") + "}"
	}
	return fmt.Sprint(v.Interface())
}

// Load fills cfg, a pointer to a struct already holding its defaults, from
// the YAML file, the environment and args (without the program name), then
// calls Validate. name is the service name, used in --help. Unknown YAML keys
// and malformed values are errors naming the key. It returns ErrHelp after
// printing usage to out when args ask for --help.
func Load(cfg Validator, name string, args []string, out io.Writer) error {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()

	fields := Fields(cfg)
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	configFile := fs.String("config", os.Getenv(EnvPrefix+"_CONFIG"), "YAML config file (env "+EnvPrefix+"_CONFIG)")
	for _, f := range fields {
		fs.String(f.Key, "", fmt.Sprintf("%s (env %s, default %q)", f.Desc, f.Env, f.Default))
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage of %s:\n%s", name, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return err
	}

	// Defaults make every key known to viper, which is what lets
	// AutomaticEnv find nested keys on Unmarshal.
	walk(reflect.ValueOf(cfg).Elem(), "", func(key string, fv reflect.Value, _ reflect.StructField) {
		v.SetDefault(key, fv.Interface())
	})
	if *configFile != "" {
		v.SetConfigFile(*configFile)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("config file %s: %w", *configFile, err)
		}
	}
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "config" {
			v.Set(f.Name, f.Value.String())
		}
	})

	dec := func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	}
	if err := v.Unmarshal(cfg, dec); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := readFiles(reflect.ValueOf(cfg).Elem(), ""); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			return err
		}
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Markdown renders the reference table of cfg's keys for docs/configuration.md.
func Markdown(title string, cfg any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n| key | env | type | default | meaning |\n|---|---|---|---|---|\n", title)
	for _, f := range Fields(cfg) {
		def := f.Default
		if def == "" {
			def = " "
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", f.Key, f.Env, f.Type, def, f.Desc)
	}
	return b.String()
}
