package httputil

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
)

// UnmatchedRoute is the route label of a request no route matched.
const UnmatchedRoute = "unmatched"

// Route returns the path template of the route that served the request
// (e.g. "/_matrix/client/versions"), for logs and metrics: the template, not
// the raw path, keeps metric labels few. It is UnmatchedRoute before or
// without a match.
func Route(ctx context.Context) string {
	if st := stateOf(ctx); st != nil && st.route != "" {
		return st.route
	}
	return UnmatchedRoute
}

// CaptureRoute is a mux middleware (router.Use) that records the matched
// route's template where Route and the access log find it.
func CaptureRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateOf(r.Context()); st != nil {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					st.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// NewRouter returns a mux router that records route templates and answers
// unknown endpoints with 404 M_UNRECOGNIZED and known endpoints called with
// the wrong method with 405 M_UNRECOGNIZED (and an Allow header).
//
// It matches the escaped path and never "cleans" it: Matrix identifiers in
// paths may hold an escaped '/' (room v3 event IDs are standard base64), which
// must stay inside one path variable. Read variables with PathVar.
func NewRouter() *mux.Router {
	r := mux.NewRouter().UseEncodedPath().SkipClean(true)
	r.Use(CaptureRoute)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		WriteError(w, req, Unrecognized("unrecognized request: "+req.Method+" "+req.URL.Path))
	})
	r.MethodNotAllowedHandler = methodNotAllowed(r)
	return r
}

// methodNotAllowed answers 405 with the methods the path does allow.
func methodNotAllowed(router *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := req.Clone(req.Context())
			probe.Method = m
			var match mux.RouteMatch
			if router.Match(probe, &match) && match.MatchErr == nil {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(append(allowed, http.MethodOptions), ", "))
		}
		WriteError(w, req, MethodNotAllowed("method "+req.Method+" is not allowed on "+req.URL.Path))
	})
}

// withCheapEscapedPath returns u, or a copy of it whose EscapedPath costs
// nothing. The router matches the escaped path (see NewRouter) and asks
// every route in turn for it; with no RawPath, as when the client escaped
// the path the usual way, url.URL computes it afresh each time, and a
// room ID's '!' makes that allocate: for a request that reached a route
// late in the list, several kilobytes, a noticeable share of the server's
// garbage under a burst of sends. A path of characters RFC 3986 allows
// unescaped (sub-delimiters such as '!' and '$' included) and no '%' is
// its own escaped form, so it is recorded as RawPath, which EscapedPath
// returns as it is. Anything else keeps the usual escaping.
func withCheapEscapedPath(u *url.URL) *url.URL {
	if u.RawPath != "" || !isOwnEscaping(u.Path) {
		return u
	}
	c := *u
	c.RawPath = c.Path
	return &c
}

// isOwnEscaping reports whether path needs no escaping to be a valid URL
// path: only unreserved characters, sub-delimiters, ':', '@' and '/'.
func isOwnEscaping(path string) bool {
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// PathVar returns the route variable name of r, percent-decoded (the router
// matches the escaped path, see NewRouter).
func PathVar(r *http.Request, name string) string {
	raw := mux.Vars(r)[name]
	v, err := url.PathUnescape(raw)
	if err != nil {
		// net/http has already refused malformed escapes in the request
		// line, so this is unreachable for served requests.
		return raw
	}
	return v
}
