package postback

// aliasIndex maps parameter names to aliases, case-insensitively. It is an
// open-addressing table over a cheap hash of a name's length and three of
// its bytes: MMP parameter names are few (under 100 per MMP) and differ in
// those, so a lookup is a hash and usually one comparison, about a third of
// a Go map lookup, and needs no lower-cased copy of the name. Parse looks up
// every parameter of every postback, which makes this worth its few lines.
type aliasIndex struct {
	names [indexSize]string // lower case; "" = empty slot
	vals  [indexSize]alias
}

// indexSize is a power of two well above twice the largest table (Branch,
// with its export spellings, has about 80 names).
const indexSize = 256

func hashName(s string) uint32 {
	n := len(s)
	if n == 0 {
		return 0
	}
	h := uint32(n) * 0x9E3779B1
	h ^= uint32(lower(s[0])) * 0x85EBCA77
	h ^= uint32(lower(s[n-1])) * 0xC2B2AE3D
	h ^= uint32(lower(s[n/2])) * 0x27D4EB2F
	return h ^ h>>15
}

// add inserts a lower-case name; the first insertion of a name wins. It
// reports false when the name is already present or the table is full.
func (x *aliasIndex) add(name string, a alias) bool {
	for i, h := 0, hashName(name); i < indexSize; i, h = i+1, h+1 {
		slot := h & (indexSize - 1)
		switch x.names[slot] {
		case "":
			x.names[slot], x.vals[slot] = name, a
			return true
		case name:
			return false
		}
	}
	return false
}

// get finds a name in any letter case.
func (x *aliasIndex) get(name string) (alias, bool) {
	for i, h := 0, hashName(name); i < indexSize; i, h = i+1, h+1 {
		slot := h & (indexSize - 1)
		n := x.names[slot]
		if n == "" {
			return alias{}, false
		}
		if len(n) == len(name) && (n == name || foldEqual(name, n)) {
			return x.vals[slot], true
		}
	}
	return alias{}, false
}

// foldEqual reports whether s equals the lower-case lc, ignoring ASCII case.
func foldEqual(s, lc string) bool {
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lc[i] {
			return false
		}
	}
	return true
}
