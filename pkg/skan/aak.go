package skan

import (
	"encoding/base64"
	"strings"
)

// parseAAK reads an AdAttributionKit postback: the compact JWS in
// "jws-string" (header, payload, signature, base64url without padding) and
// the unsigned fields beside it.
func parseAAK(outer fields) (*Postback, error) {
	p := &Postback{Framework: AdAttributionKit, jws: true}
	jws, err := outer.strMax("jws-string", true, maxBody)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, fail(ReasonMalformed, "jws-string", "is not a compact JWS (header.payload.signature)")
	}
	dec := func(part, what string) ([]byte, error) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(part)
		if err != nil {
			return nil, fail(ReasonMalformed, "jws-string", "%s is not base64url: %v", what, err)
		}
		return b, nil
	}
	hb, err := dec(parts[0], "header")
	if err != nil {
		return nil, err
	}
	pb, err := dec(parts[1], "payload")
	if err != nil {
		return nil, err
	}
	if p.sig, err = dec(parts[2], "signature"); err != nil {
		return nil, err
	}
	p.Signature = parts[2]
	p.signed = []byte(parts[0] + "." + parts[1])
	header, err := object(hb)
	if err != nil {
		return nil, fail(ReasonMalformed, "jws-string", "header: %v", err)
	}
	alg, err := header.str("alg", true)
	if err != nil {
		return nil, prefix(err, "jws header ")
	}
	if alg != "ES256" {
		return nil, fail(ReasonUnknownKey, "alg", "%s is not ES256", quote(alg))
	}
	if p.KeyID, err = header.str("kid", true); err != nil {
		return nil, prefix(err, "jws header ")
	}
	f, err := object(pb)
	if err != nil {
		return nil, fail(ReasonMalformed, "jws-string", "payload: %v", err)
	}
	if p.AdNetworkID, err = f.str("ad-network-identifier", true); err != nil {
		return nil, err
	}
	if p.SourceIdentifier, err = f.str("source-identifier", true); err != nil {
		return nil, err
	}
	app, err := f.integer("advertised-item-identifier", true)
	if err != nil {
		return nil, err
	}
	p.AppID = *app
	if p.TransactionID, err = f.str("postback-identifier", true); err != nil {
		return nil, err
	}
	if p.ConversionType, err = f.str("conversion-type", true); err != nil {
		return nil, err
	}
	switch p.ConversionType {
	case "download", "redownload", "re-engagement":
	default:
		return nil, fail(ReasonBadField, "conversion-type", "%s is not download, redownload or re-engagement", quote(p.ConversionType))
	}
	re := p.ConversionType == "redownload"
	p.Redownload = &re
	if p.ImpressionType, err = f.str("impression-type", true); err != nil {
		return nil, err
	}
	if p.DidWin, err = f.boolean("did-win", true); err != nil {
		return nil, err
	}
	if p.PostbackSequenceIndex, err = f.integer("postback-sequence-index", true); err != nil {
		return nil, err
	}
	if p.MarketplaceID, err = f.str("marketplace-identifier", false); err != nil {
		return nil, err
	}
	if p.SourceAppID, err = f.integer("publisher-item-identifier", false); err != nil {
		return nil, err
	}
	if p.SourceDomain, err = f.str("source-domain", false); err != nil {
		return nil, err
	}
	if p.AdInteractionType, err = outer.str("ad-interaction-type", false); err != nil {
		return nil, err
	}
	if err := p.common(outer); err != nil {
		return nil, err
	}
	return p, nil
}

func prefix(err error, s string) error {
	if e, ok := err.(*Error); ok {
		e.Field = s + e.Field
	}
	return err
}
