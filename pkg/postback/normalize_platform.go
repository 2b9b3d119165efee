package postback

import (
	"errors"

	"github.com/adtrack/postback/pkg/event"
)

// ErrPlatform is returned for a platform value that is not iOS, Android or web.
var ErrPlatform = errors.New("not a known platform (ios, android, web)")

// platformNames maps lower-cased platform spellings of the MMPs to ours:
// plain names, Branch's user_data.platform (IOS_APP, DESKTOP_WEB...) and
// user_data.os, Tenjin's amazon / android_other (Android-based stores).
var platformNames = map[string]event.Platform{
	"ios":           event.PlatformIOS,
	"iphone":        event.PlatformIOS,
	"ipad":          event.PlatformIOS,
	"ipados":        event.PlatformIOS,
	"ios_app":       event.PlatformIOS,
	"android":       event.PlatformAndroid,
	"android_app":   event.PlatformAndroid,
	"amazon":        event.PlatformAndroid,
	"android_other": event.PlatformAndroid,
	"web":           event.PlatformWeb,
	"desktop_web":   event.PlatformWeb,
	"mobile_web":    event.PlatformWeb,
}

// NormalizePlatform maps an explicit platform parameter (any case: "iOS",
// "Android", "IOS_APP") to an event.Platform.
func NormalizePlatform(s string) (event.Platform, error) {
	var buf [16]byte
	if len(s) <= len(buf) {
		b := buf[:len(s)]
		for i := 0; i < len(s); i++ {
			b[i] = lower(s[i])
		}
		if p, ok := platformNames[string(b)]; ok {
			return p, nil
		}
	}
	return event.PlatformUnknown, &valueError{msg: quoteShort(s) + " is " + ErrPlatform.Error(), kind: ErrPlatform}
}

// InferPlatform guesses the platform when no parameter says it: an IDFA or
// IDFV means iOS, a GAID or Android id means Android; else the app id's
// shape decides: "id123456789" is an App Store id (iOS), a reverse-DNS name
// ("com.example.app") a Play package (Android). iOS bundle ids look the same,
// which is why the device ids are asked first.
func InferPlatform(d event.Device, appID string) event.Platform {
	switch {
	case d.IDFA != "" || d.IDFV != "":
		return event.PlatformIOS
	case d.GAID != "" || d.AndroidID != "":
		return event.PlatformAndroid
	}
	return platformFromAppID(appID)
}

func platformFromAppID(appID string) event.Platform {
	if len(appID) > 2 && appID[0] == 'i' && appID[1] == 'd' && allDigits(appID[2:]) {
		return event.PlatformIOS
	}
	if reverseDNS(appID) {
		return event.PlatformAndroid
	}
	return event.PlatformUnknown
}

// reverseDNS reports whether s is shaped like a Java package name: two or
// more dot-separated segments, each starting with a letter.
func reverseDNS(s string) bool {
	dots := 0
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if start {
				return false
			}
			dots++
			start = true
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9', c == '_':
			if start {
				return false
			}
		default:
			return false
		}
		start = false
	}
	return dots > 0 && !start
}
