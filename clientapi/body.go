package clientapi

// Reading request bodies into typed structs, with the spec's errors.

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// readObjectInto reads a JSON object body (httputil.ReadJSONObject: size,
// syntax, an object) into dst, whose wrong-typed fields are 400 M_BAD_JSON
// naming the field. It returns the body as read.
func readObjectInto(r *http.Request, dst any) (json.RawMessage, error) {
	raw, err := httputil.ReadJSONObject(r)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return nil, badJSONError(err)
	}
	return raw, nil
}

// badJSONError is the 400 M_BAD_JSON for a body of the wrong shape,
// naming the field where encoding/json can.
func badJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return httputil.BadJSON(`"` + te.Field + `" has the wrong type: ` + te.Value + " where a " + te.Type.Kind().String() + " was expected")
	}
	return httputil.BadJSON("invalid request body: " + err.Error())
}
