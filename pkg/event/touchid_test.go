package event

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestKeyedTouchIDs(t *testing.T) {
	a := KeyedClickID("c1", "req-1")
	if a != KeyedClickID("c1", "req-1") {
		t.Fatal("the same campaign and key gave two ids")
	}
	distinct := map[string]bool{a: true, KeyedClickID("c2", "req-1"): true, KeyedClickID("c1", "req-2"): true,
		KeyedImpressionID("c1", "req-1"): true, KeyedClickID("c1/req", "1"): true}
	if len(distinct) != 5 {
		t.Errorf("ids collide across campaigns, keys or kinds: %v", distinct)
	}
	v7, _ := uuid.NewV7()
	for id, want := range map[string]bool{
		a: true, KeyedImpressionID("c", "k"): true,
		v7.String(): false, uuid.NewString(): false, strings.ToUpper(a): false, "k-7f3a9c2e": false, "": false,
		strings.Replace(a, "-", "x", 1): false, a[:35] + "g": false,
	} {
		if IsKeyedTouchID(id) != want {
			t.Errorf("IsKeyedTouchID(%q) = %v, want %v", id, !want, want)
		}
		// touch_keys' views select length 36 and '5' at position 15 (1-based):
		// every keyed id must be among them.
		if want && (len(id) != 36 || id[14] != '5') {
			t.Errorf("%s escapes touch_keys' views", id)
		}
	}
}
