// Package postback parses and normalizes MMP postbacks (AppsFlyer, Adjust,
// Branch, Singular, Kochava, Tenjin and a generic format) into the canonical
// records of package event. It is pure: no HTTP, no Kafka, no clock.
//
// The ingest service authenticates a request, strips the auth token, turns
// the body into parameters with BodyParams, merges them with the query string
// with MergeParams (the body wins), and calls Parse.
//
// Each MMP is a table of parameter-name aliases mapped to canonical fields
// (mmp_*.go); the parsing and normalization logic is shared by all of them.
// docs/mmp/<mmp>.md holds the postback URL templates to paste into each
// MMP's partner settings; a test parses those templates so docs and code
// cannot drift.
//
// Conventions every MMP shares:
//   - An empty value, a literal "null", or a macro the MMP left unexpanded
//     ("(idfa)", "{idfa}", "{{advertising_id}}", "${(user_data.idfa)!}") means
//     the parameter is absent, not malformed.
//   - Parameter names match case-insensitively. When two aliases of one field
//     are present, the one listed first in the MMP's table wins; the same
//     parameter repeated with different values is an error.
//   - Parameters no table mentions are ignored (they stay in Raw).
//   - Every error is a *FieldError naming the parameter as the MMP sent it.
package postback
