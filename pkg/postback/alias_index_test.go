package postback

import (
	"strings"
	"testing"
)

// TestAliasIndex checks that every name of every table (and Branch's export
// spellings) is found in any letter case, with its table rank, and that
// near misses are not.
func TestAliasIndex(t *testing.T) {
	tables := []table{appsflyerTable, adjustTable, branchTable, singularTable, kochavaTable, tenjinTable, genericTable}
	for i, tb := range tables {
		s := specs[i]
		if s.name != tb.name {
			t.Fatalf("specs[%d] is %s, table %s", i, s.name, tb.name)
		}
		for _, r := range tb.params {
			for rank, name := range r.names {
				names := []string{name, strings.ToUpper(name)}
				if tb.exportNames != nil {
					names = append(names, tb.exportNames(name))
				}
				for _, n := range names {
					a, ok := s.aliases.get(n)
					if !ok || a.field != r.field || int(a.prio) != rank || a.unit != r.unit {
						t.Errorf("%s: %q -> %+v, %v; want field %d rank %d", s.name, n, a, ok, r.field, rank)
					}
				}
				for _, miss := range []string{name + "x", "x" + name, name[:len(name)-1]} {
					if a, ok := s.aliases.get(miss); ok && a.field == r.field && !contains(tb, miss) {
						t.Errorf("%s: near miss %q found as %+v", s.name, miss, a)
					}
				}
			}
		}
	}
	var empty aliasIndex
	if _, ok := empty.get("idfa"); ok {
		t.Error("empty index finds a name")
	}
}

func contains(tb table, name string) bool {
	for _, r := range tb.params {
		for _, n := range r.names {
			if strings.EqualFold(n, name) || (tb.exportNames != nil && tb.exportNames(n) == name) {
				return true
			}
		}
	}
	return false
}
