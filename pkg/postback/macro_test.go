package postback

import "testing"

func TestAbsent(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, "null": true, "NULL": true, "undefined": true,
		"(idfa)": true, "(install-unix-ts)": true, "(advertiserId)": true,
		"{idfa}": true, "{gps_adid}": true, "{cl?AdTrack}": true, "{NETWORK=Ad Track}": true, "{pcrid?Ad Track}": true,
		"{{advertising_id}}": true, "{{acquired_at_ms}}": true,
		"${(user_data.idfa)!}": true, "${(last_attributed_touch_data.~click_id)!}": true, "<#if attributed>1<#else>0</#if>": true,
		"%7Bidfa%7D": true, "%28idfa%29": true, "%24%7B(id)!%7D": true,
		// data, not macros
		`{"af_revenue":"4.99"}`: false, "{}": false, "()": false, "(not set)": false, "{a b: c}": false,
		"6D92078A-8246-4BA4-AE5B-76104861E7DC": false, "k-7f3a9c2e": false, "%41": false, "0": false, "false": false,
		"(" + string(make([]byte, 200)) + ")": false,
	} {
		if got := absent(in); got != want {
			t.Errorf("absent(%q) = %v, want %v", in, got, want)
		}
	}
}
