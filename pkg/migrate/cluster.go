package migrate

import (
	"fmt"
	"regexp"
	"strings"
)

// LocalSuffix ends the name of the Replicated table that holds one shard's
// rows of a table in cluster mode; the table's own name is the Distributed
// table over every shard's local table.
const LocalSuffix = "_local"

// A cluster layout is derived from the single-server migrations, so there is
// one schema to write and review. Each statement maps as follows:
//
//	CREATE TABLE t (...) ENGINE = XMergeTree() ...
//	    -> t_local, ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/t_local', '{replica}') ...
//	    -> t, Distributed(<cluster>, <db>, t_local, src_partition or rand())
//	CREATE MATERIALIZED VIEW v TO t AS SELECT ... FROM s
//	    -> the same over t_local and s_local: it runs on the replica that
//	       receives the insert, in the same INSERT, as on one server
//	CREATE VIEW v AS SELECT ... FROM t ... JOIN (SELECT ... FROM s)
//	    -> the same over the Distributed tables, every JOIN GLOBAL
//
// Every statement runs ON CLUSTER with every name qualified by the database:
// 18.16 runs a distributed DDL in the default database of each host, except
// for the name being created. Anything else (ALTER, INSERT) has no derived
// form and is refused, naming the statement.

var (
	identRE       = `([A-Za-z_][A-Za-z0-9_]*)`
	createTableRE = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+` + identRE + `\s*\((.*)\)\s*ENGINE\s*=\s*([A-Za-z]*)MergeTree\(\s*\)(.*)$`)
	createMVRE    = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+` + identRE + `\s+TO\s+` + identRE + `\s+AS\s+(.*)$`)
	createViewRE  = regexp.MustCompile(`(?is)^CREATE\s+VIEW\s+IF\s+NOT\s+EXISTS\s+` + identRE + `\s+AS\s+(.*)$`)
	tableRefRE    = regexp.MustCompile(`(?i)\b(FROM|JOIN)\s+` + identRE)
	joinRE        = regexp.MustCompile(`(?i)\b(GLOBAL\s+)?((?:(?:ANY|ALL|LEFT|RIGHT|INNER|FULL|OUTER|CROSS)\s+)*)JOIN\b`)
	inSubqueryRE  = regexp.MustCompile(`(?i)\bIN\s*\(\s*SELECT\b`)
	srcPartRE     = regexp.MustCompile(`(?i)\bsrc_partition\s+UInt32\b`)
)

// clusterizer turns single-server statements into their cluster form. It
// remembers the tables and views created so far, in migration order.
type clusterizer struct {
	cluster, db string
	tables      map[string]bool
	views       map[string]bool
}

func newClusterizer(cluster, db string) *clusterizer {
	return &clusterizer{cluster: cluster, db: db, tables: map[string]bool{}, views: map[string]bool{}}
}

// rewrite returns the cluster statements for one single-server statement.
func (c *clusterizer) rewrite(stmt string) ([]string, error) {
	sql, err := stripComments(stmt)
	if err != nil {
		return nil, err
	}
	sql = strings.TrimSpace(sql)
	on := " ON CLUSTER " + c.cluster
	if m := createTableRE.FindStringSubmatch(sql); m != nil {
		name, cols, kind, rest := m[1], m[2], m[3], m[4]
		local := name + LocalSuffix
		key := "rand()"
		if srcPartRE.MatchString(cols) {
			// A Kafka partition's rows stay on one shard: its progress row
			// lands with them, and a retried block splits the same way.
			key = "src_partition"
		}
		c.tables[name] = true
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (%s) ENGINE = Replicated%sMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}')%s",
				c.db, local, on, cols, kind, c.db, local, rest),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s ENGINE = Distributed(%s, %s, %s, %s)",
				c.db, name, on, c.db, local, c.cluster, c.db, local, key),
		}, nil
	}
	if m := createMVRE.FindStringSubmatch(sql); m != nil {
		name, target, query := m[1], m[2], m[3]
		if !c.tables[target] {
			return nil, fmt.Errorf("materialized view %s writes to %s, which no earlier migration created as a table", name, target)
		}
		query, err := c.qualify(query, LocalSuffix)
		if err != nil {
			return nil, fmt.Errorf("materialized view %s: %w", name, err)
		}
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s%s AS %s",
			c.db, name, on, c.db, target, LocalSuffix, query)}, nil
	}
	if m := createViewRE.FindStringSubmatch(sql); m != nil {
		name, query := m[1], m[2]
		if inSubqueryRE.MatchString(query) {
			return nil, fmt.Errorf("view %s: IN (SELECT ...) has no derived cluster form; write GLOBAL IN or a JOIN", name)
		}
		query, err := c.qualify(query, "")
		if err != nil {
			return nil, fmt.Errorf("view %s: %w", name, err)
		}
		// Over Distributed tables the right side of a JOIN must be computed
		// once and sent to every shard (a plain JOIN is refused there).
		query = joinRE.ReplaceAllString(query, "GLOBAL ${2}JOIN")
		c.views[name] = true
		return []string{fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s%s AS %s", c.db, name, on, query)}, nil
	}
	return nil, fmt.Errorf("no cluster form for this statement (only CREATE TABLE/VIEW/MATERIALIZED VIEW IF NOT EXISTS are derived): %.80s", sql)
}

// qualify prefixes the database to every table or view read after FROM or
// JOIN, and suffix to tables (views keep their name). A name no migration
// created is an error: unqualified, it would resolve to another database on
// the other hosts.
func (c *clusterizer) qualify(query, suffix string) (string, error) {
	var b strings.Builder
	last := 0
	for _, m := range tableRefRE.FindAllStringSubmatchIndex(query, -1) {
		start, end := m[2*2], m[2*2+1]
		name := query[start:end]
		if end < len(query) && (query[end] == '.' || query[end] == '(') {
			continue // db.table, or a table function
		}
		switch {
		case c.tables[name]:
			name = c.db + "." + name + suffix
		case c.views[name] && suffix == "":
			name = c.db + "." + name
		default:
			return "", fmt.Errorf("reads %s, which no earlier migration created", name)
		}
		b.WriteString(query[last:start])
		b.WriteString(name)
		last = end
	}
	b.WriteString(query[last:])
	return b.String(), nil
}

// stripComments removes -- and /* */ comments outside quotes.
func stripComments(sql string) (string, error) {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(sql); i++ {
		ch := sql[i]
		switch {
		case quote != 0:
			b.WriteByte(ch)
			if ch == '\\' && i+1 < len(sql) {
				i++
				b.WriteByte(sql[i])
			} else if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
			b.WriteByte(ch)
		case ch == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case ch == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return "", fmt.Errorf("unterminated /* comment at byte %d", i)
			}
			i += end + 3
			b.WriteByte(' ')
		default:
			b.WriteByte(ch)
		}
	}
	if quote != 0 {
		return "", fmt.Errorf("unterminated %c quote", quote)
	}
	return b.String(), nil
}

// clusterStatements derives every migration's cluster statements, in order,
// before anything runs: a statement without a cluster form fails the run
// before it touches the server.
func clusterStatements(migs []Migration, cluster, db string) (map[uint32][]string, error) {
	c := newClusterizer(cluster, db)
	out := make(map[uint32][]string, len(migs))
	for _, m := range migs {
		for i, st := range m.Statements {
			sts, err := c.rewrite(st)
			if err != nil {
				return nil, fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
			}
			out[m.Version] = append(out[m.Version], sts...)
		}
	}
	return out, nil
}
