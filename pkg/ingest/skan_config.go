package ingest

import (
	"github.com/adtrack/postback/pkg/config"
	"github.com/adtrack/postback/pkg/skan"
)

// SKAN configures POST /v1/skan (the ingest.skan section): whose postbacks
// are ours, and the keys Apple's signatures are verified with.
type SKAN struct {
	AdNetworkIDs []string          `mapstructure:"ad_network_ids" desc:"Our registered SKAdNetwork / AdAttributionKit ad network ids. Postbacks for any other are refused (401 wrong_ad_network_id). Empty: POST /v1/skan answers 404."`
	P192Key      string            `mapstructure:"p192_key" desc:"Base64 DER public key verifying SKAdNetwork 1.0 and 2.0 postbacks (ECDSA P-192). Default: Apple's, from its SKAdNetwork 2 release notes."`
	P256Key      string            `mapstructure:"p256_key" desc:"Base64 DER public key verifying SKAdNetwork 2.1 and later postbacks (ECDSA P-256). Default: Apple's, from \"Verifying an install-validation postback\"."`
	AAKKeys      map[string]string `mapstructure:"aak_keys" desc:"AdAttributionKit keys by JWS kid (base64 DER, P-256). Default: Apple's production key apple-cas-identifier/0 only; add apple-development-identifier/0 or /1 (pkg/skan keys.go) to accept development postbacks. YAML only."`
}

// DefaultSKAN returns Apple's production keys and no ad network (off).
func DefaultSKAN() SKAN {
	k := skan.DefaultKeys()
	return SKAN{P192Key: k.P192, P256Key: k.P256, AAKKeys: k.AAK}
}

// Keys returns the section's keys in package skan's form.
func (s *SKAN) Keys() skan.Keys {
	return skan.Keys{P192: s.P192Key, P256: s.P256Key, AAK: s.AAKKeys}
}

// Validate checks the keys parse.
func (s *SKAN) Validate() error {
	if err := skan.ParseP192Key(s.P192Key); err != nil {
		return config.Errorf("ingest.skan.p192_key", "%v", err)
	}
	if err := skan.ParseP256Key(s.P256Key); err != nil {
		return config.Errorf("ingest.skan.p256_key", "%v", err)
	}
	for kid, k := range s.AAKKeys {
		if err := skan.ParseP256Key(k); err != nil {
			return config.Errorf("ingest.skan.aak_keys."+kid, "%v", err)
		}
	}
	for _, id := range s.AdNetworkIDs {
		if id == "" {
			return config.Errorf("ingest.skan.ad_network_ids", "must not contain an empty id")
		}
	}
	return nil
}
