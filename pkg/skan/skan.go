// Package skan parses and verifies Apple's signed attribution postbacks:
// SKAdNetwork install-validation postbacks of versions 1.0 to 4.0, and
// AdAttributionKit's JWS postbacks. It does no I/O and knows no Kafka or
// ClickHouse; package ingest serves it on POST /v1/skan.
//
//	p, err := skan.Parse(body)                 // structure and field rules: *Error, 400
//	v, err := skan.NewVerifier(skan.DefaultKeys(), []string{"example123.skadnetwork"})
//	err = v.Verify(p)                           // Apple's signature, our ad network: *Error, 401
//
// A SKAdNetwork postback is signed over its field values joined with
// U+2063 (invisible separator) in an order that depends on its version
// (Apple, "Verifying an install-validation postback" and "Combining
// parameters for previous SKAdNetwork postback versions"):
//
//	1.0        ad-network-id, campaign-id, app-id, transaction-id
//	2.0, 2.1   version, ad-network-id, campaign-id, app-id, transaction-id, redownload, [source-app-id]
//	2.2        ... as 2.1, then fidelity-type
//	3.0        ... as 2.2, then did-win
//	4.0        version, ad-network-id, source-identifier, app-id, transaction-id, redownload,
//	           [source-app-id | source-domain], fidelity-type, did-win, postback-sequence-index
//
// with redownload and did-win as "true" / "false", integers in decimal,
// bracketed values only when the postback has them; conversion-value,
// coarse-conversion-value and country-code are never signed. 1.0 and 2.0
// are ECDSA P-192 with SHA-256 (verified by this package's math/big code,
// crypto/ecdsa having no P-192), 2.1 and later ECDSA P-256 with SHA-256.
//
// An AdAttributionKit postback is a JSON object whose "jws-string" is a
// compact JWS (RFC 7515) with header {"kid", "alg": "ES256"} whose payload
// holds the signed fields; conversion-value, coarse-conversion-value,
// country-code and ad-interaction-type sit beside it, unsigned.
package skan

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Framework says which of Apple's frameworks sent a postback.
type Framework string

// Frameworks.
const (
	SKAdNetwork      Framework = "skadnetwork"
	AdAttributionKit Framework = "adattributionkit"
)

// Versions are the SKAdNetwork postback versions this package verifies.
var Versions = []string{"1.0", "2.0", "2.1", "2.2", "3.0", "4.0"}

// Reasons a postback is refused; each *Error carries one. They are the
// reason column of the rejected topic and table.
const (
	ReasonMalformed        = "malformed"           // not a JSON object, a value of the wrong type, truncated
	ReasonUnknownVersion   = "unknown_version"     // a SKAdNetwork version this package does not know
	ReasonMissingField     = "missing_field"       // a field the version requires is absent
	ReasonBadField         = "bad_field"           // a value outside what Apple defines
	ReasonInvalidSignature = "invalid_signature"   // Apple's signature does not verify
	ReasonUnknownKey       = "unknown_key"         // an AdAttributionKit kid (or alg) with no configured key
	ReasonWrongAdNetwork   = "wrong_ad_network_id" // signed, but for another ad network
)

// Error is why a postback was refused.
type Error struct {
	Reason string // one of the Reason constants
	Field  string // the postback field to blame, when there is one
	Detail string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Reason + ": " + e.Field + ": " + e.Detail
	}
	return e.Reason + ": " + e.Detail
}

// Unauthorized reports whether the postback is well formed but not proven
// to be Apple's for us (an HTTP 401); the other reasons are a 400.
func (e *Error) Unauthorized() bool {
	switch e.Reason {
	case ReasonInvalidSignature, ReasonUnknownKey, ReasonWrongAdNetwork:
		return true
	}
	return false
}

func fail(reason, field, format string, args ...any) *Error {
	return &Error{Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Postback is one parsed postback with every field the versions define.
// Optional integers and flags are pointers: absent is not zero (test
// postbacks carry a source-app-id of 0).
type Postback struct {
	Framework Framework
	// Version is the SKAdNetwork version ("1.0" when the postback has
	// none, as 1.0 postbacks do); empty for AdAttributionKit.
	Version     string
	AdNetworkID string
	// CampaignID is SKAdNetwork 1.0-3.0's campaign-id; nil from 4.0 on.
	CampaignID *int64
	// SourceIdentifier is SKAdNetwork 4.0's and AdAttributionKit's
	// hierarchical source identifier: 2, 3 or 4 digits by data tier.
	SourceIdentifier string
	// AppID is the advertised app's App Store id (AdAttributionKit's
	// advertised-item-identifier).
	AppID int64
	// TransactionID identifies the conversion (AdAttributionKit's
	// postback-identifier).
	TransactionID string
	// Redownload is SKAdNetwork 2.0+'s redownload; for AdAttributionKit it
	// is conversion-type "redownload".
	Redownload *bool
	// SourceAppID is the app that showed the ad (AdAttributionKit's
	// publisher-item-identifier), when the data tier allows.
	SourceAppID *int64
	// SourceDomain is the web site that showed the ad (4.0 web ads).
	SourceDomain string
	// FidelityType is 1 for StoreKit-rendered ads and clicks, 0 for
	// view-through ads (2.2+).
	FidelityType          *int64
	ConversionValue       *int64 // fine value 0..63
	CoarseConversionValue string // low, medium, high (4.0, AdAttributionKit)
	DidWin                *bool  // 3.0+
	PostbackSequenceIndex *int64 // 0, 1, 2: the conversion window (4.0, AdAttributionKit)
	CountryCode           string
	// AdAttributionKit only.
	ConversionType    string // download, redownload, re-engagement
	ImpressionType    string // app-impression, web-impression
	MarketplaceID     string // com.apple.AppStore, or an alternative marketplace
	AdInteractionType string // click, view
	KeyID             string // the JWS kid
	// Signature is attribution-signature (base64 DER) or the JWS signature.
	Signature string

	signed []byte // the bytes Apple signed
	sig    []byte // the decoded signature
	jws    bool
}

// DedupKey identifies a conversion's postback across resends: the
// transaction id (or postback identifier) and, from SKAdNetwork 4.0 on,
// the conversion window, whose up to three postbacks share the id.
func (p *Postback) DedupKey() string {
	seq := int64(0)
	if p.PostbackSequenceIndex != nil {
		seq = *p.PostbackSequenceIndex
	}
	return p.TransactionID + "/" + strconv.FormatInt(seq, 10)
}

// SignedString returns the bytes the signature covers (the U+2063-joined
// fields, or the JWS signing input).
func (p *Postback) SignedString() string { return string(p.signed) }

// maxBody bounds what Parse reads: real postbacks are under 2 KiB.
const maxBody = 16 << 10

// Parse parses a postback body as a device sends it: a SKAdNetwork
// postback (JSON with attribution-signature) or an AdAttributionKit one
// (JSON with jws-string). It checks structure and the field rules of the
// version, not the signature (Verifier.Verify does). Every error is *Error.
func Parse(body []byte) (*Postback, error) {
	if len(body) > maxBody {
		return nil, fail(ReasonMalformed, "", "body of %d bytes exceeds %d", len(body), maxBody)
	}
	obj, err := object(body)
	if err != nil {
		return nil, fail(ReasonMalformed, "", "%v", err)
	}
	if _, ok := obj["jws-string"]; ok {
		return parseAAK(obj)
	}
	return parseSKAN(obj)
}

func parseSKAN(f fields) (*Postback, error) {
	p := &Postback{Framework: SKAdNetwork, Version: "1.0"}
	var err error
	if f.has("version") {
		if p.Version, err = f.str("version", true); err != nil {
			return nil, err
		}
	}
	v := p.Version
	switch v {
	case "1.0", "2.0", "2.1", "2.2", "3.0", "4.0":
	default:
		return nil, fail(ReasonUnknownVersion, "version", "%s is not one of %s", quote(v), strings.Join(Versions, ", "))
	}
	v4 := v == "4.0"
	if p.AdNetworkID, err = f.str("ad-network-id", true); err != nil {
		return nil, err
	}
	if v4 {
		if p.SourceIdentifier, err = f.str("source-identifier", true); err != nil {
			return nil, err
		}
	} else if p.CampaignID, err = f.integer("campaign-id", true); err != nil {
		return nil, err
	}
	app, err := f.integer("app-id", true)
	if err != nil {
		return nil, err
	}
	p.AppID = *app
	if p.TransactionID, err = f.str("transaction-id", true); err != nil {
		return nil, err
	}
	if p.Redownload, err = f.boolean("redownload", v != "1.0"); err != nil {
		return nil, err
	}
	if p.SourceAppID, err = f.integer("source-app-id", false); err != nil {
		return nil, err
	}
	if p.SourceDomain, err = f.str("source-domain", false); err != nil {
		return nil, err
	}
	if p.SourceDomain != "" && !v4 {
		return nil, fail(ReasonBadField, "source-domain", "only 4.0 postbacks have one")
	}
	if p.SourceDomain != "" && p.SourceAppID != nil {
		return nil, fail(ReasonBadField, "source-domain", "a postback has source-app-id or source-domain, not both")
	}
	if p.FidelityType, err = f.integer("fidelity-type", v == "2.2" || v == "3.0" || v4); err != nil {
		return nil, err
	}
	if p.DidWin, err = f.boolean("did-win", v == "3.0" || v4); err != nil {
		return nil, err
	}
	if p.PostbackSequenceIndex, err = f.integer("postback-sequence-index", v4); err != nil {
		return nil, err
	}
	if err := p.common(f); err != nil {
		return nil, err
	}
	if p.Signature, err = f.str("attribution-signature", true); err != nil {
		return nil, err
	}
	if p.sig, err = base64.StdEncoding.DecodeString(p.Signature); err != nil {
		return nil, fail(ReasonMalformed, "attribution-signature", "is not base64: %v", err)
	}
	p.signed = []byte(strings.Join(p.signedFields(), "\u2063"))
	return p, nil
}

// common reads and checks the fields both frameworks share outside the
// signature, and the ranges of the signed ones.
func (p *Postback) common(f fields) error {
	var err error
	if p.ConversionValue, err = f.integer("conversion-value", false); err != nil {
		return err
	}
	if p.CoarseConversionValue, err = f.str("coarse-conversion-value", false); err != nil {
		return err
	}
	if p.CountryCode, err = f.str("country-code", false); err != nil {
		return err
	}
	if c := p.ConversionValue; c != nil && *c > 63 {
		return fail(ReasonBadField, "conversion-value", "%d is not in 0..63", *c)
	}
	switch p.CoarseConversionValue {
	case "", "low", "medium", "high":
	default:
		return fail(ReasonBadField, "coarse-conversion-value", "%s is not low, medium or high", quote(p.CoarseConversionValue))
	}
	if p.ConversionValue != nil && p.CoarseConversionValue != "" {
		return fail(ReasonBadField, "coarse-conversion-value", "a postback has conversion-value or coarse-conversion-value, not both")
	}
	if s := p.PostbackSequenceIndex; s != nil && *s > 2 {
		return fail(ReasonBadField, "postback-sequence-index", "%d is not 0, 1 or 2", *s)
	}
	if s := p.PostbackSequenceIndex; s != nil && *s > 0 && p.ConversionValue != nil {
		return fail(ReasonBadField, "conversion-value", "only the first postback (sequence index 0) has a fine value")
	}
	if ft := p.FidelityType; ft != nil && *ft > 1 {
		return fail(ReasonBadField, "fidelity-type", "%d is not 0 or 1", *ft)
	}
	if id := p.SourceIdentifier; id != "" && (len(id) < 2 || len(id) > 4 || strings.TrimLeft(id, "0123456789") != "") {
		return fail(ReasonBadField, "source-identifier", "%s is not 2 to 4 digits", quote(id))
	}
	if cc := p.CountryCode; cc != "" && (len(cc) != 2 || strings.ToUpper(cc) != cc || strings.TrimLeft(cc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
		return fail(ReasonBadField, "country-code", "%s is not an ISO 3166-1 alpha-2 code", quote(cc))
	}
	return nil
}

// signedFields lists the signed values of a SKAdNetwork postback in its
// version's order (see the package documentation).
func (p *Postback) signedFields() []string {
	itoa := func(v *int64) string { return strconv.FormatInt(*v, 10) }
	btoa := func(v *bool) string { return strconv.FormatBool(*v) }
	if p.Version == "1.0" {
		return []string{p.AdNetworkID, itoa(p.CampaignID), strconv.FormatInt(p.AppID, 10), p.TransactionID}
	}
	out := make([]string, 0, 10)
	out = append(out, p.Version, p.AdNetworkID)
	if p.Version == "4.0" {
		out = append(out, p.SourceIdentifier)
	} else {
		out = append(out, itoa(p.CampaignID))
	}
	out = append(out, strconv.FormatInt(p.AppID, 10), p.TransactionID, btoa(p.Redownload))
	if p.SourceAppID != nil {
		out = append(out, itoa(p.SourceAppID))
	} else if p.SourceDomain != "" {
		out = append(out, p.SourceDomain)
	}
	switch p.Version {
	case "2.2":
		out = append(out, itoa(p.FidelityType))
	case "3.0":
		out = append(out, itoa(p.FidelityType), btoa(p.DidWin))
	case "4.0":
		out = append(out, itoa(p.FidelityType), btoa(p.DidWin), itoa(p.PostbackSequenceIndex))
	}
	return out
}
