package messageapi

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Error codes. They are part of the HTTP contract: clients branch on them,
// so they never change meaning. The HTTP layer maps each to one status.
const (
	EINVALID         = "invalid_argument"
	EUNAUTHENTICATED = "unauthenticated"   // no valid credentials
	EPERMISSION      = "permission_denied" // valid credentials, acting outside their rights
	ENOTFOUND        = "not_found"
	EMETHOD          = "method_not_allowed"
	ECONFLICT        = "conflict"
	ELIMIT           = "limit_exceeded"
	ETOOLARGE        = "payload_too_large"
	EMEDIATYPE       = "unsupported_media_type"
	ERATELIMITED     = "rate_limited"
	EUNAVAILABLE     = "unavailable"
	EINTERNAL        = "internal"
)

// Error is an error meant for the client. Message is written for a person;
// Fields, for validation errors only, says what is wrong with each field.
// Any error that is not an *Error is internal: its text is logged, never
// shown.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
	// Err is the underlying cause, for logs; it is never shown to clients.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// An error names at most MaxErrorFields fields, each cut to MaxFieldName
// bytes: a request with thousands of unknown parameters, or a huge one,
// must not make its error huge too.
const (
	MaxErrorFields = 20
	MaxFieldName   = 64
)

// InvalidFields returns a validation error that names each bad field, or
// the first MaxErrorFields of them in name order and how many there are.
func InvalidFields(fields map[string]string) *Error {
	if len(fields) <= MaxErrorFields && !slices.ContainsFunc(slices.Collect(maps.Keys(fields)), longName) {
		return &Error{Code: EINVALID, Message: "request is invalid", Fields: fields}
	}
	names := slices.Sorted(maps.Keys(fields))
	kept := make(map[string]string, MaxErrorFields)
	for _, name := range names[:min(len(names), MaxErrorFields)] {
		short := name
		if longName(name) {
			short = strings.ToValidUTF8(name[:MaxFieldName], "") + "…"
		}
		kept[short] = fields[name]
	}
	msg := "request is invalid"
	if len(names) > MaxErrorFields {
		msg = fmt.Sprintf("request is invalid: %d problems, the first %d listed", len(names), MaxErrorFields)
	}
	return &Error{Code: EINVALID, Message: msg, Fields: kept}
}

func longName(name string) bool { return len(name) > MaxFieldName }

// FieldErrors collects what is wrong with each field of a request, so that
// one validation error names every bad field. The first reason recorded
// for a field is kept.
type FieldErrors map[string]string

// Check records reason for field unless ok, and reports ok.
func (f FieldErrors) Check(ok bool, field, reason string) bool {
	if !ok {
		f.Add(field, reason)
	}
	return ok
}

// Add records reason for field, unless the field has a reason already.
func (f FieldErrors) Add(field, reason string) {
	if _, seen := f[field]; !seen {
		f[field] = reason
	}
}

// Has reports whether field has a reason.
func (f FieldErrors) Has(field string) bool {
	_, ok := f[field]
	return ok
}

// Err returns the validation error naming every field recorded, or nil.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return InvalidFields(f)
}

// Unavailable wraps err, a failure of a dependency, as a retryable error.
// The cause stays in the chain for logs; the client sees only the message.
func Unavailable(what string, err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: what + " is temporarily unavailable", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the client-facing message of err: the message of its
// *Error, or "internal error" for anything else, so driver text never leaks.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the per-field reasons of a validation error, or nil.
func ErrorFields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}
