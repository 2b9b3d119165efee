package postback

import "github.com/adtrack/postback/pkg/event"

// eventNames maps the MMPs' common event names, lower-cased with spaces and
// hyphens turned into underscores, to the pipeline's taxonomy. Names not
// listed (customer-defined ones, "login", ...) are event.NameCustom.
var eventNames = map[string]event.Taxonomy{
	// install: Kochava "_install", Branch INSTALL / REINSTALL.
	"install":    event.NameInstall,
	"_install":   event.NameInstall,
	"af_install": event.NameInstall,
	"reinstall":  event.NameInstall,
	"first_open": event.NameInstall,

	// app_open: AppsFlyer af_app_opened, Branch OPEN, Kochava/Adjust sessions.
	"af_app_opened": event.NameAppOpen,
	"app_opened":    event.NameAppOpen,
	"app_open":      event.NameAppOpen,
	"open":          event.NameAppOpen,
	"session":       event.NameAppOpen,
	"_session":      event.NameAppOpen,
	"session_start": event.NameAppOpen,
	"sng_session":   event.NameAppOpen,
	"launch":        event.NameAppOpen,
	"app_launch":    event.NameAppOpen,
	"reopen":        event.NameAppOpen,

	// purchase: AppsFlyer af_purchase, Branch PURCHASE, Singular __iap__ and
	// revenue events, Kochava Purchase, Tenjin purchase.
	"af_purchase":            event.NamePurchase,
	"purchase":               event.NamePurchase,
	"revenue":                event.NamePurchase,
	"__iap__":                event.NamePurchase,
	"iap":                    event.NamePurchase,
	"in_app_purchase":        event.NamePurchase,
	"sng_ecommerce_purchase": event.NamePurchase,
	"ecommerce_purchase":     event.NamePurchase,
	"order":                  event.NamePurchase,
	"order_completed":        event.NamePurchase,
	"checkout_completed":     event.NamePurchase,

	// level_achieved: AppsFlyer af_level_achieved, Branch ACHIEVE_LEVEL,
	// Singular sng_level_achieved, Kochava "Level Complete".
	"af_level_achieved":  event.NameLevelAchieved,
	"level_achieved":     event.NameLevelAchieved,
	"achieve_level":      event.NameLevelAchieved,
	"sng_level_achieved": event.NameLevelAchieved,
	"level_complete":     event.NameLevelAchieved,
	"level_completed":    event.NameLevelAchieved,
	"level_up":           event.NameLevelAchieved,
	"levelup":            event.NameLevelAchieved,

	// screen_view: AppsFlyer af_content_view, Branch VIEW_ITEM, Singular
	// sng_content_view, Kochava View.
	"af_content_view":  event.NameScreenView,
	"content_view":     event.NameScreenView,
	"sng_content_view": event.NameScreenView,
	"view_item":        event.NameScreenView,
	"view_content":     event.NameScreenView,
	"screen_view":      event.NameScreenView,
	"page_view":        event.NameScreenView,
	"pageview":         event.NameScreenView,
	"view":             event.NameScreenView,

	// click: ad clicks reported as events (AppsFlyer af_ad_click, Branch CLICK_AD).
	"click":       event.NameClick,
	"af_ad_click": event.NameClick,
	"ad_click":    event.NameClick,
	"click_ad":    event.NameClick,

	// form_submit: registrations and leads (AppsFlyer af_complete_registration,
	// Branch COMPLETE_REGISTRATION, Singular sng_complete_registration,
	// Kochava "Registration Complete").
	"af_complete_registration":  event.NameFormSubmit,
	"complete_registration":     event.NameFormSubmit,
	"sng_complete_registration": event.NameFormSubmit,
	"registration_complete":     event.NameFormSubmit,
	"registration":              event.NameFormSubmit,
	"sign_up":                   event.NameFormSubmit,
	"signup":                    event.NameFormSubmit,
	"form_submit":               event.NameFormSubmit,
	"submit_form":               event.NameFormSubmit,
	"af_lead":                   event.NameFormSubmit,
	"lead":                      event.NameFormSubmit,
}

// NormalizeEventName maps an MMP's event name to the taxonomy, ignoring
// letter case, and treating spaces and hyphens as underscores ("PURCHASE",
// "Level Complete", "af-purchase"). Unknown names are event.NameCustom; the
// caller keeps the original name beside the result.
func NormalizeEventName(name string) event.Taxonomy {
	var buf [40]byte
	if len(name) > len(buf) {
		return event.NameCustom // longer than any name listed
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := lower(name[i])
		if c == ' ' || c == '-' {
			c = '_'
		}
		b[i] = c
	}
	if t, ok := eventNames[string(b)]; ok {
		return t
	}
	return event.NameCustom
}
