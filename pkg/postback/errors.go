package postback

import (
	"errors"
	"strconv"
)

// FieldError reports a parameter that could not be accepted. Field names the
// parameter as the MMP sent it (e.g. "install_unix_ts"), or the canonical
// parameter the MMP's template uses when it is missing.
type FieldError struct {
	Field   string
	Problem string
	// Err is the underlying cause when there is one (money.ErrCurrency,
	// ErrTimeRange, ...); errors.Is and errors.As see through FieldError.
	Err error
}

// Error formats the error as `field "revenue": not a decimal number`.
func (e *FieldError) Error() string { return "field " + strconv.Quote(e.Field) + ": " + e.Problem }

// Unwrap returns the underlying cause, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// ErrUnsupportedContentType is wrapped by the FieldError BodyParams returns
// for a body whose content type it cannot read (ingest answers 415).
var ErrUnsupportedContentType = errors.New("unsupported content type")

// valueError is what the normalizers return: a readable problem (without the
// parameter name, which only Parse knows) that unwraps to a sentinel.
type valueError struct {
	msg  string
	kind error
}

// Error returns the problem, worded to follow `field "x": `.
func (e *valueError) Error() string { return e.msg }

// Unwrap returns the sentinel (ErrTimeRange, money.ErrSyntax, ...).
func (e *valueError) Unwrap() error { return e.kind }

// fieldErr wraps a normalizer's error with the parameter it came from.
func fieldErr(field string, err error) *FieldError {
	return &FieldError{Field: field, Problem: err.Error(), Err: err}
}

// quoteShort quotes a value for an error message, cut to keep messages small
// (the full value is in Raw anyway).
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
