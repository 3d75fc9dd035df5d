package httputil

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Error codes from the client-server spec ("Common error codes" and "Other
// error codes"). Endpoint-specific codes not listed here are plain strings
// passed to NewError.
const (
	CodeBadJSON                 = "M_BAD_JSON"
	CodeBadState                = "M_BAD_STATE"
	CodeExclusive               = "M_EXCLUSIVE"
	CodeForbidden               = "M_FORBIDDEN"
	CodeGuestAccessForbidden    = "M_GUEST_ACCESS_FORBIDDEN"
	CodeIncompatibleRoomVersion = "M_INCOMPATIBLE_ROOM_VERSION"
	CodeInvalidParam            = "M_INVALID_PARAM"
	CodeInvalidUsername         = "M_INVALID_USERNAME"
	CodeLimitExceeded           = "M_LIMIT_EXCEEDED"
	CodeMissingParam            = "M_MISSING_PARAM"
	CodeMissingToken            = "M_MISSING_TOKEN"
	CodeNotFound                = "M_NOT_FOUND"
	CodeNotJSON                 = "M_NOT_JSON"
	CodeResourceLimitExceeded   = "M_RESOURCE_LIMIT_EXCEEDED"
	CodeRoomInUse               = "M_ROOM_IN_USE"
	CodeTooLarge                = "M_TOO_LARGE"
	CodeUnauthorized            = "M_UNAUTHORIZED"
	CodeUnknown                 = "M_UNKNOWN"
	CodeUnknownToken            = "M_UNKNOWN_TOKEN"
	CodeUnrecognized            = "M_UNRECOGNIZED"
	CodeUnsupportedRoomVersion  = "M_UNSUPPORTED_ROOM_VERSION"
	CodeUserDeactivated         = "M_USER_DEACTIVATED"
	CodeUserInUse               = "M_USER_IN_USE"
)

// Error is a Matrix standard error response: an HTTP status and the JSON
// object {"errcode": Code, "error": Message, ...Extra}. It is an error, so
// components can return it and handlers pass it to WriteError unchanged.
type Error struct {
	Status  int
	Code    string
	Message string
	// Extra holds the additional fields some codes define (retry_after_ms,
	// soft_logout, room_version, admin_contact, ...). "errcode" and "error"
	// in Extra are ignored: those two always come from Code and Message.
	Extra map[string]any
	// RetryAfter, when positive, is sent as the Retry-After header (whole
	// seconds, rounded up), as the spec asks for every 429.
	RetryAfter time.Duration
}

// NewError builds an error with any status and code, for codes whose status
// depends on the endpoint.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// With returns a copy of e with one more extra field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// MarshalJSON writes the standard error object; errcode and error are always
// present, whatever Extra holds.
func (e *Error) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Extra)+2)
	for k, v := range e.Extra {
		m[k] = v
	}
	m["errcode"] = e.Code
	m["error"] = e.Message
	return json.Marshal(m)
}

// BadJSON is the 400 for valid JSON of the wrong shape (missing keys,
// values of the wrong type).
func BadJSON(msg string) *Error { return NewError(http.StatusBadRequest, CodeBadJSON, msg) }

// NotJSON is the 400 for a body that is not JSON at all.
func NotJSON(msg string) *Error { return NewError(http.StatusBadRequest, CodeNotJSON, msg) }

// InvalidParam is the 400 for a parameter with a wrong value.
func InvalidParam(msg string) *Error { return NewError(http.StatusBadRequest, CodeInvalidParam, msg) }

// MissingParam is the 400 for a required parameter that is absent.
func MissingParam(msg string) *Error { return NewError(http.StatusBadRequest, CodeMissingParam, msg) }

// Forbidden is the 403 for a request the requester may not make.
func Forbidden(msg string) *Error { return NewError(http.StatusForbidden, CodeForbidden, msg) }

// MissingToken is the 401 for a request without an access token.
func MissingToken(msg string) *Error {
	return NewError(http.StatusUnauthorized, CodeMissingToken, msg)
}

// NotFound is the 404 for a resource that does not exist (an endpoint that
// does not exist is Unrecognized).
func NotFound(msg string) *Error { return NewError(http.StatusNotFound, CodeNotFound, msg) }

// TooLarge is the 413 for a request or entity over its size limit.
func TooLarge(msg string) *Error {
	return NewError(http.StatusRequestEntityTooLarge, CodeTooLarge, msg)
}

// Unknown is the 500 for a fault of the server.
func Unknown(msg string) *Error {
	return NewError(http.StatusInternalServerError, CodeUnknown, msg)
}

// UnknownToken is the 401 for an access token the server does not know;
// softLogout tells the client it may log in again without losing its device
// (client-server-api "Soft logout").
func UnknownToken(msg string, softLogout bool) *Error {
	return NewError(http.StatusUnauthorized, CodeUnknownToken, msg).With("soft_logout", softLogout)
}

// Unrecognized is the 404 for an endpoint the server does not implement.
func Unrecognized(msg string) *Error {
	return NewError(http.StatusNotFound, CodeUnrecognized, msg)
}

// MethodNotAllowed is the 405 M_UNRECOGNIZED for a known endpoint called
// with the wrong HTTP method.
func MethodNotAllowed(msg string) *Error {
	return NewError(http.StatusMethodNotAllowed, CodeUnrecognized, msg)
}

// LimitExceeded is the 429 of rate limiting, with the deprecated
// retry_after_ms field (still read by many clients) and a Retry-After header.
func LimitExceeded(msg string, retryAfter time.Duration) *Error {
	e := NewError(http.StatusTooManyRequests, CodeLimitExceeded, msg)
	if retryAfter > 0 {
		e = e.With("retry_after_ms", retryAfter.Milliseconds())
		e.RetryAfter = retryAfter
	}
	return e
}

// WriteError answers with err. An *Error (anywhere in err's chain) is sent
// as is. A deadline is a 504 M_UNKNOWN; a cancelled request is logged at
// debug level only. Anything else is an internal fault:
// it is logged with the request ID and the client sees a 500 M_UNKNOWN
// without the internal detail.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	me := errorFor(r.Context(), err)
	if me.RetryAfter > 0 {
		secs := int64(math.Ceil(me.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	WriteJSON(w, r, me.Status, me)
}

// errorFor is the Matrix error a client sees for err (see WriteError),
// logging what the server should know about it.
func errorFor(ctx context.Context, err error) *Error {
	var me *Error
	switch {
	case errors.As(err, &me):
	case errors.Is(err, context.DeadlineExceeded):
		Logger(ctx).WarnContext(ctx, "request deadline exceeded", "err", err)
		me = NewError(http.StatusGatewayTimeout, CodeUnknown, "the request took too long")
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The client went away (or the server is stopping): nobody reads
		// this answer, and it is no fault of the server.
		Logger(ctx).DebugContext(ctx, "request cancelled", "err", err)
		me = Unknown("the request was cancelled")
	default:
		Logger(ctx).ErrorContext(ctx, "internal error", "err", err)
		me = Unknown("internal server error")
	}
	return me
}

// Logger returns the logger the request middleware put in ctx, or
// slog.Default. Log with its *Context methods and the request's context so
// the line carries the request ID.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
