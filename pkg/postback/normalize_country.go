package postback

import (
	"errors"
	"sort"
)

// ErrCountry is returned for a value that is not an ISO 3166-1 alpha-2 code.
var ErrCountry = errors.New("not an ISO 3166-1 alpha-2 country code")

// countryCodes lists the 249 officially assigned ISO 3166-1 alpha-2 codes,
// sorted, two letters each, so a lookup is a binary search with no table to
// build and the result can be a substring (no allocation).
const countryCodes = "" +
	"ADAEAFAGAIALAMAOAQARASATAUAWAXAZ" +
	"BABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ" +
	"CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ" +
	"DEDJDKDMDODZ" +
	"ECEEEGEHERESET" +
	"FIFJFKFMFOFR" +
	"GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGY" +
	"HKHMHNHRHTHU" +
	"IDIEILIMINIOIQIRISIT" +
	"JEJMJOJP" +
	"KEKGKHKIKMKNKPKRKWKYKZ" +
	"LALBLCLILKLRLSLTLULVLY" +
	"MAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ" +
	"NANCNENFNGNINLNONPNRNUNZ" +
	"OM" +
	"PAPEPFPGPHPKPLPMPNPRPSPTPWPY" +
	"QA" +
	"RERORSRURW" +
	"SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZ" +
	"TCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZ" +
	"UAUGUMUSUYUZ" +
	"VAVCVEVGVIVNVU" +
	"WFWS" +
	"YEYT" +
	"ZAZMZW"

// NormalizeCountry upper-cases an ISO 3166-1 alpha-2 code and checks it.
// Two spellings the MMPs use are translated: "UK" (AppsFlyer) is "GB", and
// "XK", the user-assigned code everyone uses for Kosovo, is kept. The
// "unknown country" markers "ZZ" (Adjust), "XX" and "--" yield "" with no
// error: the country is absent, not wrong.
func NormalizeCountry(s string) (string, error) {
	if len(s) == 2 {
		a, b := upper(s[0]), upper(s[1])
		switch {
		case a == 'U' && b == 'K':
			return "GB", nil
		case a == 'X' && b == 'K':
			return "XK", nil
		case a == 'Z' && b == 'Z', a == 'X' && b == 'X', a == '-' && b == '-':
			return "", nil
		}
		const n = len(countryCodes) / 2
		i := sort.Search(n, func(i int) bool {
			c0, c1 := countryCodes[2*i], countryCodes[2*i+1]
			return c0 > a || (c0 == a && c1 >= b)
		})
		if i < n && countryCodes[2*i] == a && countryCodes[2*i+1] == b {
			return countryCodes[2*i : 2*i+2], nil
		}
	}
	return "", &valueError{msg: quoteShort(s) + " is " + ErrCountry.Error(), kind: ErrCountry}
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
