package postback

import "strings"

// param is one row of an MMP table: a canonical field and the parameter
// names the MMP sends it under, in priority order (the first one present
// wins).
type param struct {
	field field
	names []string
	// unit is how a numeric time is read; UnitAuto (the zero value)
	// detects seconds or milliseconds by magnitude.
	unit TimeUnit
}

// row is a table row; its times, if any, are read with UnitAuto.
func row(f field, names ...string) param { return param{field: f, names: names} }

// msRow is a row of times the MMP documents in unix milliseconds.
func msRow(f field, names ...string) param { return param{field: f, names: names, unit: UnitMillis} }

// table describes one MMP: its name and its parameters. The first name of
// a row is the one the MMP's template in docs/mmp uses; errors about a
// missing field name it.
type table struct {
	name   string
	params []param
	// exportNames also registers, for every dotted row, the flattened name
	// of the MMP's log-level exports (Branch: "last_attributed_touch_data.~campaign"
	// is also "last_attributed_touch_data_tilde_campaign").
	exportNames func(string) string
}

// alias is what a parameter name resolves to.
type alias struct {
	field field
	prio  uint8
	unit  TimeUnit
}

// spec is an MMP table compiled for lookups. It is built once, when the
// package is initialized, and never modified.
type spec struct {
	name    string
	aliases aliasIndex        // parameter name (any case) -> field
	first   [numFields]string // the template's parameter name per field
	names   []string          // the table's parameter names, in order (docs test)
}

func compile(t table) *spec {
	s := &spec{name: t.name}
	var next [numFields]uint8 // ranks continue if a field has several rows
	for _, r := range t.params {
		if s.first[r.field] == "" {
			s.first[r.field] = r.names[0]
		}
		for _, name := range r.names {
			a := alias{field: r.field, prio: next[r.field], unit: r.unit}
			next[r.field]++
			s.aliases.add(strings.ToLower(name), a)
			if t.exportNames != nil {
				// Same rank: the export spelling is the same parameter.
				s.aliases.add(strings.ToLower(t.exportNames(name)), a)
			}
			s.names = append(s.names, name)
		}
	}
	return s
}

// missingName is the parameter to name when a required field is absent.
func (s *spec) missingName(fs ...field) string {
	for _, f := range fs {
		if n := s.first[f]; n != "" {
			return n
		}
	}
	return canonicalNames[fs[0]]
}

// specs are the supported MMPs, in the order MMPs() reports them.
var specs = [...]*spec{
	compile(appsflyerTable),
	compile(adjustTable),
	compile(branchTable),
	compile(singularTable),
	compile(kochavaTable),
	compile(tenjinTable),
	compile(genericTable),
}

// specFor returns the compiled table of an MMP, or nil.
func specFor(name string) *spec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
	}
	return nil
}
