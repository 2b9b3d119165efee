package analytics_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/adtrack/postback/pkg/analytics"
)

func TestSQLQueries(t *testing.T) {
	md := strings.Join([]string{
		"# Title",
		"```sql",
		"SELECT 0",
		"```",
		"## CPI by media source",
		"Some text.",
		"```sql",
		"SELECT 1",
		"FROM t;",
		"```",
		"```bash",
		"# not a heading, not SQL",
		"echo hi",
		"```",
		"### CTR",
		"```SQL",
		"  SELECT 2  ",
		"```",
		"```",
		"SELECT 3 -- unlabelled fence: not SQL",
		"```",
	}, "\n")
	got, err := analytics.SQLQueries(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []analytics.Query{
		{Heading: "Title", Line: 2, SQL: "SELECT 0"},
		{Heading: "CPI by media source", Line: 7, SQL: "SELECT 1\nFROM t"},
		{Heading: "CTR", Line: 16, SQL: "SELECT 2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestSQLQueriesUnterminated(t *testing.T) {
	_, err := analytics.SQLQueries("text\n```sql\nSELECT 1\n")
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want one naming line 2", err)
	}
}
