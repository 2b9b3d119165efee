package postback

import (
	"strings"
	"testing"

	"github.com/adtrack/postback/pkg/event"
)

func TestNormalizeEventName(t *testing.T) {
	for in, want := range map[string]event.Taxonomy{
		// AppsFlyer
		"af_purchase": event.NamePurchase, "af_app_opened": event.NameAppOpen, "af_level_achieved": event.NameLevelAchieved,
		"af_content_view": event.NameScreenView, "af_complete_registration": event.NameFormSubmit, "af_ad_click": event.NameClick,
		"af_login": event.NameCustom,
		// Branch
		"PURCHASE": event.NamePurchase, "OPEN": event.NameAppOpen, "INSTALL": event.NameInstall, "REINSTALL": event.NameInstall,
		"ACHIEVE_LEVEL": event.NameLevelAchieved, "VIEW_ITEM": event.NameScreenView, "COMPLETE_REGISTRATION": event.NameFormSubmit,
		"CLICK_AD": event.NameClick, "LOGIN": event.NameCustom,
		// Kochava
		"_install": event.NameInstall, "_session": event.NameAppOpen, "Purchase": event.NamePurchase,
		"Level Complete": event.NameLevelAchieved, "Registration Complete": event.NameFormSubmit, "View": event.NameScreenView,
		// Singular
		"__iap__": event.NamePurchase, "sng_level_achieved": event.NameLevelAchieved, "sng_content_view": event.NameScreenView,
		"sng_complete_registration": event.NameFormSubmit,
		// Adjust / Tenjin / plain
		"purchase": event.NamePurchase, "revenue": event.NamePurchase, "open": event.NameAppOpen, "session": event.NameAppOpen,
		"level-up": event.NameLevelAchieved, "sign_up": event.NameFormSubmit, "login": event.NameCustom,
		"purchase_100_coins": event.NameCustom, "bkrfgq": event.NameCustom, "": event.NameCustom,
		strings.Repeat("a", 100): event.NameCustom,
	} {
		if got := NormalizeEventName(in); got != want {
			t.Errorf("NormalizeEventName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTaxonomyTable checks the table's keys are in the form lookups use and
// its values are taxonomy constants the schema accepts.
func TestTaxonomyTable(t *testing.T) {
	valid := map[event.Taxonomy]bool{event.NameInstall: true, event.NameAppOpen: true, event.NamePurchase: true,
		event.NameLevelAchieved: true, event.NameScreenView: true, event.NameClick: true, event.NameFormSubmit: true}
	for k, v := range eventNames {
		if k != strings.ToLower(k) || strings.ContainsAny(k, " -") || len(k) > 40 || !valid[v] {
			t.Errorf("eventNames[%q] = %q: keys must be lower-case snake_case up to 40 bytes, values taxonomy names", k, v)
		}
	}
}
