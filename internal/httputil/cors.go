package httputil

import "net/http"

// The CORS headers the client-server spec recommends on every response
// (client-server-api "Web Browser Clients"). Myelin serves no method beyond
// these, so the list is the spec's as is.
const (
	corsAllowOrigin  = "*"
	corsAllowMethods = "GET, POST, PUT, DELETE, OPTIONS"
	corsAllowHeaders = "X-Requested-With, Content-Type, Authorization"
)

// CORS adds the spec's CORS headers to every response and answers every
// OPTIONS request itself with 200 {}: the spec says all endpoints support
// OPTIONS and that the server must not run the endpoint's logic for it.
func CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", corsAllowOrigin)
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		if r.Method == http.MethodOptions {
			WriteRawJSON(w, http.StatusOK, []byte("{}"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
