package postback

import "errors"

// ErrBool is returned for a flag that is not a recognizable boolean.
var ErrBool = errors.New("not a boolean (1/0, true/false, yes/no)")

// parseBool reads the MMPs' flag spellings: Singular and Adjust send 1/0,
// AppsFlyer true/false (any case), JSON bodies true/false.
func parseBool(s string) (bool, error) {
	switch s {
	case "1", "true", "TRUE", "True", "t", "T", "yes", "YES", "Yes", "y", "Y":
		return true, nil
	case "0", "false", "FALSE", "False", "f", "F", "no", "NO", "No", "n", "N":
		return false, nil
	}
	return false, &valueError{msg: quoteShort(s) + " is " + ErrBool.Error(), kind: ErrBool}
}
