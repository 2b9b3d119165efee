package campaign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoCampaigns: the demo campaigns of `make up` are valid, and the
// Adjust one's link keeps Adjust's placeholders while carrying our click id.
func TestDemoCampaigns(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "local", "campaigns.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	camps, err := ParseYAML(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range camps {
		if c.MMP != "adjust" {
			continue
		}
		got := FillLink(c.TrackingLink, map[string]string{"click_id": "k1", "campaign_id": c.ID, "adset_id": "", "creative_id": "", "gaid": "", "app_id": "x"}, c.MMP)
		if !strings.Contains(got, "click_id%3Dk1") || !strings.Contains(got, "%7Bgps_adid%7D") || !strings.Contains(got, "%7Bapp_id%7D") {
			t.Errorf("%s: filled link %s", c.ID, got)
		}
	}
}
