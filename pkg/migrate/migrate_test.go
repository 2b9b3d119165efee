package migrate

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"two", "CREATE TABLE a (x UInt8) ENGINE = Memory;\nCREATE TABLE b (x UInt8) ENGINE = Memory;\n",
			[]string{"CREATE TABLE a (x UInt8) ENGINE = Memory", "CREATE TABLE b (x UInt8) ENGINE = Memory"}},
		{"no trailing semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"semicolon in string", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"escaped quote", `SELECT 'it\'s;'; SELECT 2`, []string{`SELECT 'it\'s;'`, "SELECT 2"}},
		{"semicolon in comment", "-- a; b\nSELECT 1;", []string{"-- a; b\nSELECT 1"}},
		{"block comment", "/* x; y */ SELECT 1; SELECT 2", []string{"/* x; y */ SELECT 1", "SELECT 2"}},
		{"backquoted", "SELECT `a;b` FROM t", []string{"SELECT `a;b` FROM t"}},
		{"only comments dropped", "SELECT 1;\n-- trailing note\n", []string{"SELECT 1"}},
		{"empty", "  \n ", nil},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"SELECT 'open", "/* never closed SELECT 1"} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) succeeded, want error", bad)
		}
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/002_second.sql": {Data: []byte("SELECT 2;")},
		"m/001_first.sql":  {Data: []byte("-- requires: clickhouse >= 20.1\nSELECT 1; SELECT 11;")},
	}
	migs, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 2 || migs[0].Name != "001_first.sql" || migs[1].Version != 2 {
		t.Fatalf("bad order: %+v", migs)
	}
	if migs[0].Requires != [2]int{20, 1} || len(migs[0].Statements) != 2 {
		t.Fatalf("first = %+v", migs[0])
	}
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":  {"m/1_x.sql": {Data: []byte("SELECT 1")}},
		"upper":     {"m/001_Base.sql": {Data: []byte("SELECT 1")}},
		"duplicate": {"m/001_a.sql": {Data: []byte("SELECT 1")}, "m/001_b.sql": {Data: []byte("SELECT 1")}},
		"empty":     {"m/001_a.sql": {Data: []byte("-- nothing\n")}},
		"values":    {"m/001_a.sql": {Data: []byte("CREATE TABLE t (x UInt8) ENGINE = Memory;\n-- seed\ninsert into t (x) values (1)")}},
	} {
		if _, err := Load(fsys, "m"); err == nil {
			t.Errorf("%s: Load succeeded, want error", name)
		}
	}
}

func TestPlan(t *testing.T) {
	m1, _ := Parse("001_a.sql", 1, "SELECT 1")
	m2, _ := Parse("002_b.sql", 2, "SELECT 2")
	m3, _ := Parse("003_ttl.sql", 3, "-- requires: clickhouse >= 20.1\nSELECT 3")
	migs := []Migration{m1, m2, m3}

	steps, err := Plan(migs, []Applied{{1, "001_a.sql", m1.Checksum}}, [2]int{18, 16})
	if err != nil {
		t.Fatal(err)
	}
	got := []Action{steps[0].Action, steps[1].Action, steps[2].Action}
	if got[0] != Skip || got[1] != Apply || got[2] != TooOld {
		t.Fatalf("actions on 18.16 = %v", got)
	}
	steps, _ = Plan(migs, []Applied{{1, "001_a.sql", m1.Checksum}, {2, "002_b.sql", m2.Checksum}}, [2]int{24, 8})
	if steps[2].Action != Apply {
		t.Fatalf("optional layer not applied on 24.8: %v", steps[2].Action)
	}
	if _, err := Plan(migs, []Applied{{1, "001_a.sql", "deadbeef"}}, [2]int{24, 8}); err == nil || !strings.Contains(err.Error(), "001_a.sql was changed") {
		t.Fatalf("changed file: err = %v", err)
	}
	if _, err := Plan(migs, []Applied{{9, "009_gone.sql", "x"}}, [2]int{24, 8}); err == nil || !strings.Contains(err.Error(), "009_gone.sql") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string][2]int{"18.16.1": {18, 16}, "24.8.4.13": {24, 8}, "25.3": {25, 3}} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "18", "x.y"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		}
	}
}
