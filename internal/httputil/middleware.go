package httputil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"
)

// RequestIDHeader carries the request ID back to the client, so a user's bug
// report can be matched with the server's log lines.
const RequestIDHeader = "X-Request-Id"

type (
	requestIDKey struct{}
	loggerKey    struct{}
	stateKey     struct{}
)

// RequestID returns the ID of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Observer receives every finished request, for metrics. route is the
// router's path template ("unmatched" when no route matched), status the
// HTTP status sent.
type Observer func(route, method string, status int, elapsed time.Duration)

// Options configures Wrap.
type Options struct {
	// Logger receives the access log and error lines; it is wrapped with
	// LogHandler so every line logged with a request's context carries its
	// request ID. nil means slog.Default().
	Logger *slog.Logger
	// Observe, if set, is called once per request (metrics).
	Observe Observer
	// CORS adds the client-server API's CORS headers and answers OPTIONS.
	CORS bool
	// Timeout is the deadline put on every request's context; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds request bodies (LimitBody); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HandBack, if set, lets handlers park requests (see Park): it takes
	// a connection back into the HTTP server once a parked request is
	// answered. nil means Park always declines.
	HandBack func(net.Conn)
}

// DefaultTimeout is the request deadline when Options.Timeout is 0. It is
// above the longest client long-poll (a /sync timeout is typically 30s).
const DefaultTimeout = 90 * time.Second

// Wrap puts h behind the common middleware, outermost first: request ID and
// logger in the context, access log and metrics, panic recovery, CORS, the
// request deadline and the body limit. The router inside should use
// CaptureRoute so the log and metrics name the route template.
func Wrap(h http.Handler, o Options) http.Handler {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if _, ok := logger.Handler().(*LogHandler); !ok {
		logger = slog.New(NewLogHandler(logger.Handler()))
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxBody := o.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	h = LimitBody(maxBody)(h)
	h = Deadline(timeout)(h)
	if o.CORS {
		h = CORS(h)
	}
	h = Recover(h)
	h = accessLog(logger, o.Observe)(h)
	return requestContext(logger, o.HandBack)(h)
}

// requestState is what the middleware keeps about a request in its
// context: the route template that CaptureRoute fills, what the access log
// needs, and whether the handler parked the request.
type requestState struct {
	route    string
	handBack func(net.Conn) // nil: Park declines
	access   accessRecord
	parked   bool
}

// accessRecord is what the access log says about a request, kept apart
// from the request so that a parked request can be logged when it is
// answered without keeping the whole *http.Request.
type accessRecord struct {
	logger                          *slog.Logger
	observe                         Observer
	start                           time.Time
	method, path, remote, userAgent string
}

// log writes the access log line of a finished request and reports it.
func (a *accessRecord) log(ctx context.Context, route string, status int, bytes int64) {
	elapsed := time.Since(a.start)
	// Only the path: the query string may hold an access_token.
	a.logger.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", a.method),
		slog.String("path", a.path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int64("bytes", bytes),
		slog.Duration("elapsed", elapsed),
		slog.String("remote", a.remote),
		slog.String("user_agent", a.userAgent),
	)
	if a.observe != nil {
		a.observe(route, a.method, status, elapsed)
	}
}

func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// requestContext gives the request an ID (also sent back in RequestIDHeader),
// the logger, and the middleware's state for the request.
func requestContext(logger *slog.Logger, handBack func(net.Conn)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := newRequestID()
			w.Header().Set(RequestIDHeader, id)
			ctx := context.WithValue(r.Context(), requestIDKey{}, id)
			ctx = context.WithValue(ctx, loggerKey{}, logger)
			ctx = context.WithValue(ctx, stateKey{}, &requestState{handBack: handBack})
			r = r.WithContext(ctx)
			r.URL = withCheapEscapedPath(r.URL)
			next.ServeHTTP(w, r)
		})
	}
}

// accessLog logs one line per request and reports it to observe. A parked
// request (Park) is logged when it is answered.
func accessLog(logger *slog.Logger, observe Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := accessRecord{logger: logger, observe: observe, start: time.Now(),
				method: r.Method, path: r.URL.Path, remote: r.RemoteAddr, userAgent: r.UserAgent()}
			st := stateOf(r.Context())
			if st != nil {
				st.access = rec
			}
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			if st != nil && st.parked {
				return
			}
			status := sw.status
			if status == 0 {
				// The handler wrote nothing: net/http sends 200.
				status = http.StatusOK
			}
			rec.log(r.Context(), Route(r.Context()), status, sw.bytes)
		})
	}
}

// Recover turns a panic in a handler into a logged stack trace and a 500
// M_UNKNOWN (if nothing was sent yet), so one bad request never takes the
// server down. http.ErrAbortHandler keeps its meaning: abort quietly.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			Logger(r.Context()).ErrorContext(r.Context(), "panic in handler",
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.status == 0 {
				WriteError(sw, r, Unknown("internal server error"))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// Deadline puts a deadline on every request's context, so no request can
// hold resources forever.
func Deadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// statusWriter records the status and size of a response. It unwraps for
// http.ResponseController, so flushing and deadlines still reach the
// connection.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	// 1xx responses (103 Early Hints) are not the final status.
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes through to the connection for streamed responses.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
