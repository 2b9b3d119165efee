package postback

import (
	"errors"
	"testing"

	"github.com/adtrack/postback/pkg/event"
)

func TestNormalizePlatform(t *testing.T) {
	for in, want := range map[string]event.Platform{
		"ios": event.PlatformIOS, "iOS": event.PlatformIOS, "IOS_APP": event.PlatformIOS, "iPadOS": event.PlatformIOS,
		"android": event.PlatformAndroid, "Android": event.PlatformAndroid, "ANDROID_APP": event.PlatformAndroid,
		"amazon": event.PlatformAndroid, "android_other": event.PlatformAndroid,
		"web": event.PlatformWeb, "DESKTOP_WEB": event.PlatformWeb, "mobile_web": event.PlatformWeb,
	} {
		if got, err := NormalizePlatform(in); err != nil || got != want {
			t.Errorf("NormalizePlatform(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"windows", "", "i0s", "androidandroidandroid"} {
		if _, err := NormalizePlatform(in); !errors.Is(err, ErrPlatform) {
			t.Errorf("NormalizePlatform(%q) error %v, want ErrPlatform", in, err)
		}
	}
}

func TestInferPlatform(t *testing.T) {
	cases := []struct {
		d     event.Device
		appID string
		want  event.Platform
	}{
		{event.Device{IDFA: sIDFAOut}, "com.example.game", event.PlatformIOS}, // ids beat the app id's shape
		{event.Device{IDFV: sIDFVOut}, "", event.PlatformIOS},
		{event.Device{GAID: sGAID}, "id123", event.PlatformAndroid},
		{event.Device{AndroidID: sAndroidID}, "", event.PlatformAndroid},
		{event.Device{}, "id1234567890", event.PlatformIOS},
		{event.Device{}, "com.example.game", event.PlatformAndroid},
		{event.Device{}, "com.example_2.game3", event.PlatformAndroid},
		{event.Device{}, "idea", event.PlatformUnknown},
		{event.Device{}, "com", event.PlatformUnknown},
		{event.Device{}, "com.", event.PlatformUnknown},
		{event.Device{}, ".com.x", event.PlatformUnknown},
		{event.Device{}, "com.1x", event.PlatformUnknown},
		{event.Device{}, "com..x", event.PlatformUnknown},
		{event.Device{}, "My App", event.PlatformUnknown},
		{event.Device{}, "", event.PlatformUnknown},
	}
	for _, c := range cases {
		if got := InferPlatform(c.d, c.appID); got != c.want {
			t.Errorf("InferPlatform(%+v, %q) = %q, want %q", c.d, c.appID, got, c.want)
		}
	}
}
