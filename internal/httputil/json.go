package httputil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"
)

// DefaultMaxBodyBytes bounds a request body when no LimitBody middleware set
// a limit: 65,536 bytes, the spec's size limit for an event.
const DefaultMaxBodyBytes = 65536

// WriteJSON answers with v encoded as JSON and Content-Type application/json.
// v is encoded before anything is written, so an unencodable value becomes a
// clean 500 M_UNKNOWN instead of a half-written body.
func WriteJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	status, body := encodeJSON(r.Context(), status, v)
	WriteRawJSON(w, status, body)
}

// encodeJSON is v as a response body, or a 500 M_UNKNOWN when v cannot be
// encoded.
func encodeJSON(ctx context.Context, status int, v any) (int, []byte) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// URLs and HTML-looking strings stay readable: the escaping protects
	// nothing here, responses are never embedded in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		Logger(ctx).ErrorContext(ctx, "cannot encode JSON response", "err", err)
		return http.StatusInternalServerError, []byte(`{"errcode":"M_UNKNOWN","error":"internal server error"}`)
	}
	return status, buf.Bytes()
}

// WriteRawJSON answers with body, which must already be JSON (for responses
// whose exact bytes matter, such as signed objects).
func WriteRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ReadJSON decodes the request body, which must be one JSON value, into dst.
// Errors are *Error values ready for WriteError:
//   - 413 M_TOO_LARGE over the body limit (see LimitBody),
//   - 400 M_NOT_JSON for an empty body, invalid UTF-8 or invalid JSON,
//   - 400 M_BAD_JSON for valid JSON of the wrong shape for dst.
func ReadJSON(r *http.Request, dst any) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return BadJSON(describeUnmarshalError(err))
	}
	return nil
}

// ReadJSONObject returns the request body after checking that it is a JSON
// object, for handlers that need the exact bytes (signed or hashed content).
// Its errors are those of ReadJSON.
func ReadJSONObject(r *http.Request) ([]byte, error) {
	body, err := ReadBody(r)
	if err != nil {
		return nil, err
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	if bytes.TrimLeft(body, " \t\r\n")[0] != '{' {
		return nil, BadJSON("the request body must be a JSON object")
	}
	return body, nil
}

// ReadBody reads the whole request body under the request's body limit;
// over it, the error is 413 M_TOO_LARGE.
func ReadBody(r *http.Request) ([]byte, error) {
	limit := bodyLimit(r.Context())
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		// The client went away or the connection broke mid-body.
		return nil, NewError(http.StatusBadRequest, CodeUnknown, "cannot read the request body: "+err.Error())
	case int64(len(body)) > limit:
		return nil, tooLarge(limit)
	}
	return body, nil
}

func tooLarge(limit int64) *Error {
	return TooLarge(fmt.Sprintf("the request body is larger than %d bytes", limit))
}

// checkJSON accepts exactly one JSON value encoded in UTF-8.
func checkJSON(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return NotJSON("the request body is empty; expected JSON")
	}
	// encoding/json would silently replace invalid UTF-8; the spec requires
	// UTF-8, and Synapse refuses it too.
	if !utf8.Valid(body) {
		return NotJSON("the request body is not valid UTF-8")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return NotJSON("the request body is not valid JSON: " + err.Error())
	}
	return nil
}

func describeUnmarshalError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Sprintf("the request body must be a JSON %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("%q must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return "invalid request body: " + err.Error()
}

// jsonKind names a Go kind the way a JSON author would.
func jsonKind(kind string) string {
	switch kind {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	}
	return "value of another type"
}

type bodyLimitKey struct{}

func bodyLimit(ctx context.Context) int64 {
	if n, ok := ctx.Value(bodyLimitKey{}).(int64); ok {
		return n
	}
	return DefaultMaxBodyBytes
}

// LimitBody bounds request bodies to maxBytes. A declared Content-Length
// over it is refused at once with 413 M_TOO_LARGE, before the endpoint runs;
// a body that turns out longer stops being read at the limit, which
// ReadBody and ReadJSON report as 413 too. An inner LimitBody overrides the
// limit for what it wraps, but the outer one has already refused large
// declared bodies: an API with bigger bodies (media uploads) is mounted
// outside the general LimitBody, with its own.
func LimitBody(maxBytes int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > maxBytes {
				// The body is left unread, so the connection cannot carry
				// another request.
				w.Header().Set("Connection", "close")
				WriteError(w, r, tooLarge(maxBytes))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, maxBytes)))
		})
	}
}
