package deploy_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// isKeyword reports the identifiers of PromQL that are not metric names
// when they are not followed by a parenthesis: operators, and the
// aggregations (followed by `by (...)` or `without (...)` instead).
func isKeyword(w string) bool {
	switch strings.ToLower(w) {
	case "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
		"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
		"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio":
		return true
	}
	return false
}

// takesLabelList reports the keywords followed by a list of label names.
func takesLabelList(w string) bool {
	switch strings.ToLower(w) {
	case "by", "without", "on", "ignoring", "group_left", "group_right":
		return true
	}
	return false
}

// metricNames returns the metric names a PromQL expression (or a Grafana
// variable query) reads: identifiers outside label matchers, ranges and
// strings that are not functions, aggregations, keywords or label lists.
func metricNames(expr string) []string {
	// Grafana's label_values(metric, label): the last argument is a label.
	expr = regexp.MustCompile(`label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)`).ReplaceAllString(expr, "$1")
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			i = skipTo(expr, i, '}')
		case c == '[':
			i = skipTo(expr, i, ']')
		case c == '#': // a comment runs to the end of the line
			i = skipTo(expr, i, '\n')
		case c == '$': // a Grafana variable
			i++
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++ // numbers and durations (5m, 1e3)
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && (isIdent(expr[j]) || expr[j] == ':') {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\n' || expr[k] == '\t') {
				k++
			}
			switch {
			case takesLabelList(word):
				if k < len(expr) && expr[k] == '(' {
					j = skipTo(expr, k, ')')
				}
			case k < len(expr) && expr[k] == '(':
				// a function or an aggregation
			case isKeyword(word):
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool      { return isIdentStart(c) || c >= '0' && c <= '9' }

// skipTo returns the index after the first close at or after i+1 (the
// end of s if none).
func skipTo(s string, i int, close byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == '"' || s[j] == '\'' || s[j] == '`' {
			j = skipString(s, j) - 1
			continue
		}
		if s[j] == close {
			return j + 1
		}
	}
	return len(s)
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' && q != '`' {
			j++
			continue
		}
		if s[j] == q {
			return j + 1
		}
	}
	return len(s)
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (source, code) (rate(ingest_requests_total{route="postback", source=~"$mmp", code=~"4..|5.."}[$__rate_interval]))`: {"ingest_requests_total"},
		`histogram_quantile(0.99, sum by (le, stage) (rate(attribution_freshness_seconds_bucket[5m]))) > 2`:                        {"attribution_freshness_seconds_bucket"},
		`max(sink_consumer_lag) > 10 and on () (sum(rate(sink_rows_inserted_total[10m])) or vector(0)) == 0`:                       {"sink_consumer_lag", "sink_rows_inserted_total"},
		`a:b_ratio offset 5m / ignoring (x) group_left (y) other_total unless bool up`:                                             {"a:b_ratio", "other_total", "up"},
		`label_values(ingest_requests_total{route="postback"}, source)`:                                                            {"ingest_requests_total"},
		`rate(x_total{l="a}b"}[1m]) * 1e3 + 0.5 # a comment naming not_a_metric`:                                                   {"x_total"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}
