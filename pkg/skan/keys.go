package skan

// Apple's published public keys, base64 DER SubjectPublicKeyInfo. They are
// the defaults of the ingest.skan configuration; each can be replaced there
// (for example to accept postbacks signed with test keys in staging).
const (
	// AppleP192 verifies SKAdNetwork 1.0 and 2.0 postbacks. Source: Apple,
	// "SKAdNetwork 2 release notes" and "SKAdNetwork 1 release notes"
	// (developer.apple.com/documentation/storekit/skadnetwork-2-release-notes):
	// "When verifying an install-validation postback for version 2.0, use
	// the following Apple P-192 public key". Cross-checked against the same
	// constant in the public Go implementation whisk/skadnetwork
	// (pkg/apple_keys.go).
	AppleP192 = "MEkwEwYHKoZIzj0CAQYIKoZIzj0DAQEDMgAEMyHD625uvsmGq4C43cQ9BnfN2xslVT5V1nOmAMP6qaRRUll3PB1JYmgSm+62sosG"

	// AppleP256 verifies SKAdNetwork 2.1 and later postbacks, and is also
	// AdAttributionKit's production key "apple-cas-identifier/0". Source:
	// Apple, "Verifying an install-validation postback" ("Apple's NIST P-256
	// public key that you use to verify signatures for versions 2.1 and
	// later") and AdAttributionKit "Verifying a postback" ("To validate
	// production postbacks: apple-cas-identifier/0"). Cross-checked against
	// whisk/skadnetwork (pkg/apple_keys.go) and mechiru/skadnetwork; the six
	// example postbacks of versions 2.1 to 4.0 on Apple's pages verify with it
	// (pkg/skan tests).
	AppleP256 = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWdp8GPcGqmhgzEFj9Z2nSpQVddayaPe4FMzqM9wib1+aHaaIzoHoLN9zW4K8y4SPykE3YVK3sVqW6Af0lfx3gg=="

	// AppleAAKDevelopment0 verifies AdAttributionKit postbacks the system
	// creates in development end-to-end flows (kid
	// "apple-development-identifier/0"). Source: Apple, AdAttributionKit
	// "Verifying a postback". Not accepted by default: configure it only
	// where development postbacks are wanted.
	AppleAAKDevelopment0 = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELeEDzpJEP+/qRSE5hJVC1p1J0ssUnQGMzBBbvnACBok8OVGGLgxL0myrKiy6lvRtSlLRsWit87i+vftD8AEqeQ=="

	// AppleAAKDevelopment1 verifies AdAttributionKit postbacks generated
	// from developer settings (kid "apple-development-identifier/1").
	// Source: Apple, AdAttributionKit "Verifying a postback"; the example
	// postback of "Identifying the parameters in a postback" verifies with
	// it. Not accepted by default.
	AppleAAKDevelopment1 = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YzdO7eM97s/IJ25kdW5CZ3A14USE5IJ5Ha/vhWaxI6UBI1ZxCEvjrKxVluVGe6qWwF1BDFq+QHqKfH5u+wxHQ=="

	// AAK key ids (the JWS header's kid).
	KidProduction   = "apple-cas-identifier/0"
	KidDevelopment0 = "apple-development-identifier/0"
	KidDevelopment1 = "apple-development-identifier/1"
)
