// Package migrate applies the ordered ClickHouse migrations of
// schemas/clickhouse: files named NNN_description.sql, each applied once,
// recorded in the schema_migrations table with its checksum.
//
//	res, err := migrate.Up(ctx, conn, schemas.ClickHouse, "clickhouse", migrate.Options{})
//
// Re-running is a no-op. A migration whose file changed after it was applied
// is refused: fix forward with a new file instead. ClickHouse has no DDL
// transactions, so every statement must be idempotent (CREATE ... IF NOT
// EXISTS): a run interrupted half-way is finished by the next run.
//
// Data statements must be INSERT ... SELECT: an INSERT ... VALUES sent as a
// plain query hangs on 18.16, which expects the rows as a data block.
//
// A file may start with a line "-- requires: clickhouse >= 20.1" to make it
// an optional layer (TTL, codecs): on an older server it is skipped, left
// unrecorded, and applied by the first run against a server new enough.
package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Migration is one parsed migration file.
type Migration struct {
	Version    uint32
	Name       string   // file name, e.g. 001_base.sql
	Checksum   string   // sha256 of the file, hex
	Statements []string // in file order, without trailing semicolons
	// Requires is the minimum server version ([major, minor]); zero means any.
	Requires [2]int
}

var fileRE = regexp.MustCompile(`^([0-9]{3,})_[a-z0-9_]+\.sql$`)
var insertValuesRE = regexp.MustCompile(`(?is)^\s*(--[^\n]*\n\s*)*INSERT\s+INTO\s.*\bVALUES\b`)
var requiresRE = regexp.MustCompile(`(?m)^--\s*requires:\s*clickhouse\s*>=\s*([0-9]+)\.([0-9]+)\s*$`)

// Load reads and parses every migration under dir of fsys, sorted by version.
// Files not matching NNN_name.sql, duplicate versions and empty files are
// errors naming the file.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", dir, err)
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		m := fileRE.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNN_lower_snake.sql", name)
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("migration %s: version: %w", name, err)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migration %s: version %d already used by %s", name, v, prev)
		}
		seen[uint32(v)] = name
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		mig, err := Parse(name, uint32(v), string(body))
		if err != nil {
			return nil, err
		}
		out = append(out, mig)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Parse builds a Migration from a file's name, version and text.
func Parse(name string, version uint32, body string) (Migration, error) {
	sum := sha256.Sum256([]byte(body))
	m := Migration{Version: version, Name: name, Checksum: hex.EncodeToString(sum[:])}
	if r := requiresRE.FindStringSubmatch(body); r != nil {
		m.Requires[0], _ = strconv.Atoi(r[1])
		m.Requires[1], _ = strconv.Atoi(r[2])
	}
	stmts, err := Split(body)
	if err != nil {
		return Migration{}, fmt.Errorf("migration %s: %w", name, err)
	}
	if len(stmts) == 0 {
		return Migration{}, fmt.Errorf("migration %s: no statements", name)
	}
	for i, st := range stmts {
		if insertValuesRE.MatchString(st) {
			return Migration{}, fmt.Errorf("migration %s statement %d: INSERT ... VALUES cannot run through the native protocol on every server; write INSERT ... SELECT", name, i+1)
		}
	}
	m.Statements = stmts
	return m, nil
}

// Split cuts SQL text into statements at semicolons that are outside
// quotes, backquotes and comments. Comments are kept inside the statement
// they precede; statements that are only comments are dropped.
func Split(sql string) ([]string, error) {
	var (
		out   []string
		start int
		quote byte // ', " or ` while inside one
	)
	flush := func(end int) {
		s := strings.TrimSpace(sql[start:end])
		if s != "" && !onlyComments(s) {
			out = append(out, s)
		}
		start = end + 1
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* comment at byte %d", i)
			}
			i += end + 3
		case c == ';':
			flush(i)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	flush(len(sql))
	return out, nil
}

func onlyComments(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "--") {
			return false
		}
	}
	return true
}

// Applied is a row of schema_migrations.
type Applied struct {
	Version  uint32
	Name     string
	Checksum string
}

// Step is what Plan decided for one migration.
type Step struct {
	Migration Migration
	Action    Action
}

// Action is what a run does with one migration.
type Action int

// Actions Plan can choose.
const (
	Skip      Action = iota // already applied, unchanged
	Apply                   // not applied yet
	TooOld                  // optional layer; the server is older than it requires
	Unmatched               // applied with a different checksum: refuse
)

// Plan compares the migrations with what the server has applied and its
// version (major, minor). It returns an error naming the first migration
// whose file changed since it was applied, or an applied version that no
// longer has a file.
func Plan(migs []Migration, applied []Applied, server [2]int) ([]Step, error) {
	done := make(map[uint32]Applied, len(applied))
	for _, a := range applied {
		done[a.Version] = a
	}
	steps := make([]Step, 0, len(migs))
	known := map[uint32]bool{}
	for _, m := range migs {
		known[m.Version] = true
		a, ok := done[m.Version]
		switch {
		case ok && a.Checksum != m.Checksum:
			return nil, fmt.Errorf("migration %s was changed after it was applied as %s (checksum %.12s, applied %.12s): add a new migration instead",
				m.Name, a.Name, m.Checksum, a.Checksum)
		case ok:
			steps = append(steps, Step{m, Skip})
		case older(server, m.Requires):
			steps = append(steps, Step{m, TooOld})
		default:
			steps = append(steps, Step{m, Apply})
		}
	}
	for _, a := range applied {
		if !known[a.Version] {
			return nil, fmt.Errorf("migration %s (version %d) is recorded as applied but its file is gone", a.Name, a.Version)
		}
	}
	return steps, nil
}

func older(server, req [2]int) bool {
	return server[0] < req[0] || (server[0] == req[0] && server[1] < req[1])
}

// ParseVersion reads "major.minor" out of a ClickHouse version string such as
// "18.16.1" or "24.8.4.13".
func ParseVersion(s string) ([2]int, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, fmt.Errorf("clickhouse version %q: want major.minor", s)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("clickhouse version %q: want major.minor", s)
	}
	return [2]int{maj, min}, nil
}
