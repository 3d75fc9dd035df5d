package federation

// Inbound request authentication (server-server-api "Request
// Authentication"): every /_matrix/federation/ request but the version
// must carry an X-Matrix Authorization header signing the request with a
// current key of its origin.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/myelin-chat/myelin/federation/fedauth"
	"github.com/myelin-chat/myelin/federation/serverkeys"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
)

type originKey struct{}

// Origin returns the server that signed the request ctx belongs to, set
// by Authenticate; "" outside an authenticated request.
func Origin(ctx context.Context) string {
	o, _ := ctx.Value(originKey{}).(string)
	return o
}

// WithOrigin returns ctx carrying origin as the authenticated origin.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// Authenticate is the middleware of the signed endpoints: it answers 401
// M_UNAUTHORIZED to a request that is not signed by its origin with a key
// valid now, or that names another server as its destination, and passes
// the others on with the origin in the context (Origin). The body is read
// (under the request's body limit) to check the signature and handed on
// unchanged. Deps.OnRemoteContact hears of each authenticated origin.
func (a *API) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin, err := a.authenticate(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if a.onContact != nil {
			a.onContact(origin)
		}
		next.ServeHTTP(w, r.WithContext(WithOrigin(r.Context(), origin)))
	})
}

func unauthorized(format string, args ...any) *httputil.Error {
	return httputil.NewError(http.StatusUnauthorized, httputil.CodeUnauthorized, fmt.Sprintf(format, args...))
}

// authenticate checks the request's X-Matrix headers and returns its
// origin. Errors are *httputil.Error, or faults of this server.
func (a *API) authenticate(r *http.Request) (string, error) {
	var headers []fedauth.Header
	for _, v := range r.Header.Values("Authorization") {
		h, err := fedauth.ParseXMatrix(v)
		if errors.Is(err, fedauth.ErrNotXMatrix) {
			continue
		}
		if err != nil {
			return "", unauthorized("malformed X-Matrix Authorization header: %v", err)
		}
		headers = append(headers, h)
	}
	if len(headers) == 0 {
		return "", unauthorized("this endpoint needs a request signed with an X-Matrix Authorization header")
	}
	origin := headers[0].Origin
	if err := config.ValidServerName(origin); err != nil {
		return "", unauthorized("origin %q is not a server name: %v", origin, err)
	}
	for _, h := range headers {
		if h.Origin != origin {
			return "", unauthorized("X-Matrix headers from several origins")
		}
		// Destination is optional for servers older than Matrix 1.3; when
		// given, it must be us.
		if h.Destination != "" && h.Destination != a.cfg.ServerName {
			return "", unauthorized("the request is signed for %q, not this server (%s)", h.Destination, a.cfg.ServerName)
		}
	}

	body, err := httputil.ReadBody(r)
	if err != nil {
		return "", err
	}
	if len(body) > 0 && !json.Valid(body) {
		return "", httputil.NotJSON("the request body is not valid JSON")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	// Requests may only be signed with current keys: the time that counts
	// is now (old keys only sign events).
	now := a.now().UnixMilli()
	var failure error
	for _, h := range headers {
		pub, err := a.serverKeys.VerifyKey(r.Context(), origin, h.Key, now)
		if err != nil {
			if !errors.Is(err, serverkeys.ErrNoKey) {
				return "", err
			}
			failure = err
			continue
		}
		if err := fedauth.Verify(h, r.Method, r.RequestURI, a.cfg.ServerName, body, pub); err != nil {
			failure = err
			continue
		}
		return origin, nil
	}
	httputil.Logger(r.Context()).DebugContext(r.Context(), "refused a federation request", "origin", origin, "err", failure)
	return "", unauthorized("the request signature does not verify: %v", failure)
}
