package traffic

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/adtrack/postback/pkg/money"
)

// Found is what the pipeline holds for a run's apps (pkg/simulate reads it
// from ClickHouse).
type Found struct {
	Rows map[Key]*Measures
	// Installs: every installs row by event id (more than one is a
	// duplicate).
	Installs map[string][]InstallTruth
	// Tables: rows, and distinct ids (click_id, event_id, impression_id),
	// per table.
	Tables, Distinct map[string]uint64
	// Unauthenticated counts rows of any table carrying a device of an
	// unauthenticated request (must be 0).
	Unauthenticated uint64
}

// Report compares a ground truth with what was found.
type Report struct {
	Rows       []RowReport
	Tables     []TableTally
	Missing    []string // installs expected, not found (event ids)
	Duplicated []string // installs found more than once
	Extra      []string // installs found, not expected
	Wrong      []string // installs found with another attribution
	Unexpected []string // requests answered otherwise than designed
	Unauth     uint64   // rows from unauthenticated requests
}

// RowReport is one Key's expected and found measures.
type RowReport struct {
	Key
	Want, Got Measures
}

// TableTally is one table's rows: expected, found, distinct found, and the
// lost (expected, not there) and duplicated (there more than once) rows.
type TableTally struct {
	Table                               string
	Expected, Found, Distinct           uint64
	Lost, Duplicated, ExtraAfterFailure uint64
}

// Equal reports whether everything matched: rows, installs, tables, and
// every request answered as designed.
func (r *Report) Equal() bool {
	for _, row := range r.Rows {
		if row.Want != row.Got {
			return false
		}
	}
	for _, t := range r.Tables {
		if t.Lost != 0 || t.Duplicated != 0 || t.Expected != t.Found {
			return false
		}
	}
	return len(r.Missing)+len(r.Duplicated)+len(r.Extra)+len(r.Wrong)+len(r.Unexpected) == 0 && r.Unauth == 0
}

// Complete reports whether every expected row is there exactly once:
// nothing lost, duplicated or extra in any table, no install missing,
// duplicated or extra, nothing from an unauthenticated request. What the
// rows say (attribution, the views' measures) may still differ: Equal.
func (r *Report) Complete() bool {
	for _, t := range r.Tables {
		if t.Lost != 0 || t.Duplicated != 0 || t.Expected != t.Found {
			return false
		}
	}
	return len(r.Missing)+len(r.Duplicated)+len(r.Extra) == 0 && r.Unauth == 0
}

// Compare compares truth with found.
func Compare(truth *GroundTruth, found *Found) *Report {
	r := &Report{Unexpected: truth.Unexpected, Unauth: found.Unauthenticated}
	keys := map[Key]bool{}
	for k := range truth.Rows {
		keys[k] = true
	}
	for k := range found.Rows {
		keys[k] = true
	}
	for _, k := range slices.SortedFunc(maps.Keys(keys), compareKeys) {
		row := RowReport{Key: k}
		if m := truth.Rows[k]; m != nil {
			row.Want = *m
		}
		if m := found.Rows[k]; m != nil {
			row.Got = *m
		}
		r.Rows = append(r.Rows, row)
	}
	for _, id := range slices.Sorted(maps.Keys(truth.Installs)) {
		want := truth.Installs[id]
		got := found.Installs[id]
		switch {
		case len(got) == 0:
			r.Missing = append(r.Missing, fmt.Sprintf("%s (request %d, %s %s)", id, want.Seq, want.MMP, want.Case))
		case len(got) > 1:
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("%s x%d", id, len(got)))
		}
		if len(got) > 0 && !sameAttribution(want, got[0]) {
			r.Wrong = append(r.Wrong, fmt.Sprintf("%s (request %d, %s %s): want %s %q reinstall=%v rejected=%v flags=%v, got %s %q reinstall=%v rejected=%v flags=%v",
				id, want.Seq, want.MMP, want.Case, want.Match, want.CampaignID, want.Reinstall, want.Rejected, want.Flags,
				got[0].Match, got[0].CampaignID, got[0].Reinstall, got[0].Rejected, got[0].Flags))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(found.Installs)) {
		if _, ok := truth.Installs[id]; !ok {
			r.Extra = append(r.Extra, id)
		}
	}
	for _, t := range []string{"impressions", "clicks", "installs", "events", "rejected"} {
		tt := TableTally{Table: t, Expected: truth.Tables[t], Found: found.Tables[t], Distinct: found.Distinct[t]}
		if tt.Distinct < tt.Expected {
			tt.Lost = tt.Expected - tt.Distinct
		}
		tt.Duplicated = tt.Found - tt.Distinct
		if tt.Distinct > tt.Expected {
			tt.ExtraAfterFailure = tt.Distinct - tt.Expected
		}
		r.Tables = append(r.Tables, tt)
	}
	return r
}

func sameAttribution(a, b InstallTruth) bool {
	return a.Match == b.Match && a.CampaignID == b.CampaignID && a.Reinstall == b.Reinstall &&
		a.Rejected == b.Rejected && slices.Equal(sortedFlags(a.Flags), sortedFlags(b.Flags))
}

// ratio is num/den to 4 decimals, "-" when den is 0 (the views' NULL).
func ratio(num, den uint64) string {
	if den == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4f", float64(num)/float64(den))
}

// perInstall is amount/n truncated to 6 places as the views' CPI, "-" on 0.
func perInstall(a money.Amount, n uint64) string {
	if n == 0 {
		return "-"
	}
	return (a / money.Amount(n)).String()
}

// roas is revenue/spend, "-" without spend.
func roas(rev, spend money.Amount) string {
	if spend == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4f", float64(rev)/float64(spend))
}

// Print writes the report: one line per campaign and day with its
// measures and ratios (expected, and found where it differs), the tables'
// tally, and every install that is missing, duplicated, extra or wrong.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "day\tcampaign\timpressions\tclicks\tinstalls\treinstalls\trejected\tevents\tspend\trevenue\tCTR\tCVR\tCPI\tROAS\tfraud\t\t")
	cell := func(want, got string) string {
		if want == got {
			return want
		}
		return want + "≠" + got
	}
	for _, row := range r.Rows {
		w, g := row.Want, row.Got
		camp := row.CampaignID
		if camp == "" {
			camp = "(organic) " + row.AppID
		}
		status := "equal"
		if w != g {
			status = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Day, camp,
			cell(fmt.Sprint(w.Impressions), fmt.Sprint(g.Impressions)), cell(fmt.Sprint(w.Clicks), fmt.Sprint(g.Clicks)),
			cell(fmt.Sprint(w.Installs), fmt.Sprint(g.Installs)), cell(fmt.Sprint(w.Reinstalls), fmt.Sprint(g.Reinstalls)),
			cell(fmt.Sprint(w.RejectedInstalls), fmt.Sprint(g.RejectedInstalls)), cell(fmt.Sprint(w.Events), fmt.Sprint(g.Events)),
			cell(w.Spend.String(), g.Spend.String()), cell(w.Revenue.String(), g.Revenue.String()),
			cell(ratio(w.Clicks, w.Impressions), ratio(g.Clicks, g.Impressions)), cell(ratio(w.Installs, w.Clicks), ratio(g.Installs, g.Clicks)),
			cell(perInstall(w.Spend, w.Installs), perInstall(g.Spend, g.Installs)), cell(roas(w.Revenue, w.Spend), roas(g.Revenue, g.Spend)),
			cell(fmt.Sprint(w.FraudInstalls), fmt.Sprint(g.FraudInstalls)), status)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\texpected\tfound\tdistinct\tlost\tduplicated\textra\t")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Table, t.Expected, t.Found, t.Distinct, t.Lost, t.Duplicated, t.ExtraAfterFailure)
	}
	tw.Flush()
	for _, l := range []struct {
		name string
		ids  []string
	}{{"missing installs", r.Missing}, {"duplicated installs", r.Duplicated}, {"extra installs", r.Extra},
		{"wrongly attributed installs", r.Wrong}, {"requests answered otherwise than designed", r.Unexpected}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(w, "\n%s (%d):\n  %s\n", l.name, len(l.ids), strings.Join(l.ids, "\n  "))
		}
	}
	if r.Unauth > 0 {
		fmt.Fprintf(w, "\nrows from unauthenticated requests: %d (want 0)\n", r.Unauth)
	}
	if r.Equal() {
		fmt.Fprintln(w, "\nall equal")
	} else {
		fmt.Fprintln(w, "\nNOT EQUAL")
	}
}
