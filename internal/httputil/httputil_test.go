package httputil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return m
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		body       map[string]any
		retryAfter string
	}{
		{"forbidden", Forbidden("no"), 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "no"}, ""},
		{"wrapped", fmt.Errorf("joining: %w", NotFound("no room")), 404, map[string]any{"errcode": "M_NOT_FOUND", "error": "no room"}, ""},
		{"unknown token", UnknownToken("expired", true), 401,
			map[string]any{"errcode": "M_UNKNOWN_TOKEN", "error": "expired", "soft_logout": true}, ""},
		{"missing token", MissingToken("none"), 401, map[string]any{"errcode": "M_MISSING_TOKEN", "error": "none"}, ""},
		{"rate limited", LimitExceeded("slow down", 1500*time.Millisecond), 429,
			map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": float64(1500)}, "2"},
		{"too large", TooLarge("big"), 413, map[string]any{"errcode": "M_TOO_LARGE", "error": "big"}, ""},
		{"bad json", BadJSON("x"), 400, map[string]any{"errcode": "M_BAD_JSON", "error": "x"}, ""},
		{"not json", NotJSON("x"), 400, map[string]any{"errcode": "M_NOT_JSON", "error": "x"}, ""},
		{"unrecognized", Unrecognized("x"), 404, map[string]any{"errcode": "M_UNRECOGNIZED", "error": "x"}, ""},
		{"method", MethodNotAllowed("x"), 405, map[string]any{"errcode": "M_UNRECOGNIZED", "error": "x"}, ""},
		{"extra cannot override", NewError(400, "M_X", "msg").With("errcode", "M_Y").With("error", "other"), 400,
			map[string]any{"errcode": "M_X", "error": "msg"}, ""},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), 504,
			map[string]any{"errcode": "M_UNKNOWN", "error": "the request took too long"}, ""},
		{"internal", errors.New("disk on fire at /var/lib/secret"), 500,
			map[string]any{"errcode": "M_UNKNOWN", "error": "internal server error"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := newLogger()
			r := httptest.NewRequest("GET", "/x", nil)
			r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, logger))
			rec := httptest.NewRecorder()
			WriteError(rec, r, tc.err)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := decode(t, rec); fmt.Sprint(got) != fmt.Sprint(tc.body) {
				t.Fatalf("body %v, want %v", got, tc.body)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			// Internal details are logged, never sent.
			if tc.status == 500 && !strings.Contains(logs.String(), "disk on fire") {
				t.Fatalf("internal error not logged: %q", logs)
			}
		})
	}
}

func TestWriteErrorCancelledRequest(t *testing.T) {
	logger, logs := newLogger()
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), loggerKey{}, logger))
	cancel()
	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/x", nil).WithContext(ctx), fmt.Errorf("query: %w", context.Canceled))
	if rec.Code != 500 || strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "request cancelled") {
		t.Fatalf("status %d, log %q: want a 500 logged at debug only", rec.Code, logs)
	}
}

type target struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func TestReadJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		chunk  bool // no Content-Length
		limit  int64
		status int
		code   string
		msg    string
	}{
		{name: "ok", body: `{"name":"a","count":2,"tags":["x"]}`},
		{name: "whitespace around", body: " \n{\"name\":\"a\"}\n "},
		{name: "unknown fields ignored", body: `{"name":"a","other":{"deep":[1,2]}}`},
		{name: "empty", body: "", status: 400, code: "M_NOT_JSON", msg: "empty"},
		{name: "blank", body: "  \n", status: 400, code: "M_NOT_JSON", msg: "empty"},
		{name: "truncated", body: `{"name":`, status: 400, code: "M_NOT_JSON", msg: "not valid JSON"},
		{name: "trailing data", body: `{} {}`, status: 400, code: "M_NOT_JSON", msg: "not valid JSON"},
		{name: "form", body: `name=a`, status: 400, code: "M_NOT_JSON", msg: "not valid JSON"},
		{name: "invalid utf-8", body: "{\"name\":\"\xff\"}", status: 400, code: "M_NOT_JSON", msg: "UTF-8"},
		{name: "wrong type", body: `{"count":"two"}`, status: 400, code: "M_BAD_JSON", msg: `"count" must be a JSON number, not string`},
		{name: "wrong nested type", body: `{"tags":[1]}`, status: 400, code: "M_BAD_JSON", msg: `"tags" must be a JSON string, not number`},
		{name: "array body", body: `[1]`, status: 400, code: "M_BAD_JSON", msg: "must be a JSON object, not array"},
		{name: "over limit", body: `{"name":"` + strings.Repeat("a", 100) + `"}`, limit: 50, status: 413, code: "M_TOO_LARGE", msg: "larger than 50 bytes"},
		{name: "over limit chunked", body: `{"name":"` + strings.Repeat("a", 100) + `"}`, chunk: true, limit: 50, status: 413, code: "M_TOO_LARGE"},
		{name: "at limit", body: `{"name":"` + strings.Repeat("a", 39) + `"}`, limit: 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(tc.body))
			if tc.chunk {
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(tc.body))
			}
			if tc.limit > 0 {
				r = r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, tc.limit))
			}
			var dst target
			err := ReadJSON(r, &dst)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var me *Error
			if !errors.As(err, &me) || me.Status != tc.status || me.Code != tc.code || !strings.Contains(me.Message, tc.msg) {
				t.Fatalf("error %v, want %d %s containing %q", err, tc.status, tc.code, tc.msg)
			}
		})
	}
}

func TestReadJSONObject(t *testing.T) {
	body := `{"b":1, "a":"x"}`
	got, err := ReadJSONObject(httptest.NewRequest("POST", "/x", strings.NewReader(body)))
	if err != nil || string(got) != body {
		t.Fatalf("got %q %v, want the exact body", got, err)
	}
	for _, bad := range []string{`[]`, `"s"`, `1`, `null`} {
		_, err := ReadJSONObject(httptest.NewRequest("POST", "/x", strings.NewReader(bad)))
		var me *Error
		if !errors.As(err, &me) || me.Code != CodeBadJSON {
			t.Errorf("%s: error %v, want M_BAD_JSON", bad, err)
		}
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	logger, logs := newLogger()
	r := httptest.NewRequest("GET", "/x", nil)
	r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, logger))
	rec := httptest.NewRecorder()
	WriteJSON(rec, r, http.StatusOK, map[string]any{"c": make(chan int)})
	if rec.Code != 500 || decode(t, rec)["errcode"] != "M_UNKNOWN" || !strings.Contains(logs.String(), "cannot encode") {
		t.Fatalf("got %d %q, log %q", rec.Code, rec.Body, logs)
	}
}

// serve runs h behind Wrap and returns the response and the log.
func serve(t *testing.T, h http.Handler, o Options, req *http.Request) (*httptest.ResponseRecorder, string) {
	t.Helper()
	logger, logs := newLogger()
	o.Logger = logger
	rec := httptest.NewRecorder()
	Wrap(h, o).ServeHTTP(rec, req)
	return rec, logs.String()
}

func TestWrapRequestIDAndAccessLog(t *testing.T) {
	router := NewRouter()
	var seenID string
	router.HandleFunc("/rooms/{roomId}", func(w http.ResponseWriter, r *http.Request) {
		seenID = RequestID(r.Context())
		Logger(r.Context()).InfoContext(r.Context(), "inside the handler")
		WriteJSON(w, r, http.StatusCreated, map[string]string{"room": PathVar(r, "roomId")})
	}).Methods("GET")

	var observed []string
	o := Options{Observe: func(route, method string, status int, _ time.Duration) {
		observed = append(observed, fmt.Sprint(route, " ", method, " ", status))
	}}
	rec, logs := serve(t, router, o, httptest.NewRequest("GET", "/rooms/%21abc%2Fdef:x?access_token=SECRET", nil))
	id := rec.Header().Get(RequestIDHeader)
	if rec.Code != 201 || id == "" || id != seenID {
		t.Fatalf("status %d, header ID %q, handler saw %q", rec.Code, id, seenID)
	}
	if got := decode(t, rec)["room"]; got != "!abc/def:x" {
		t.Fatalf("path variable %q, want it decoded as !abc/def:x", got)
	}
	// Both the handler's line and the access log carry the request ID.
	if n := strings.Count(logs, "request_id="+id); n != 2 {
		t.Fatalf("request ID in %d log lines, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs, "route=/rooms/{roomId}") || !strings.Contains(logs, "status=201") {
		t.Fatalf("access log lacks the route template or status:\n%s", logs)
	}
	if strings.Contains(logs, "SECRET") {
		t.Fatalf("access token logged:\n%s", logs)
	}
	if fmt.Sprint(observed) != "[/rooms/{roomId} GET 201]" {
		t.Fatalf("observed %v", observed)
	}

	rec2, _ := serve(t, router, o, httptest.NewRequest("GET", "/rooms/x", nil))
	if rec2.Header().Get(RequestIDHeader) == id {
		t.Fatal("two requests got the same ID")
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	router := NewRouter()
	ok := func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, r, 200, map[string]any{}) }
	router.HandleFunc("/thing", ok).Methods("GET")
	router.HandleFunc("/thing", ok).Methods("PUT")

	var observed []string
	o := Options{Observe: func(route, method string, status int, _ time.Duration) {
		observed = append(observed, fmt.Sprint(route, " ", method, " ", status))
	}}
	rec, _ := serve(t, router, o, httptest.NewRequest("GET", "/nothing", nil))
	if body := decode(t, rec); rec.Code != 404 || body["errcode"] != "M_UNRECOGNIZED" {
		t.Fatalf("unknown path: %d %v", rec.Code, body)
	}
	rec, _ = serve(t, router, o, httptest.NewRequest("DELETE", "/thing", nil))
	if body := decode(t, rec); rec.Code != 405 || body["errcode"] != "M_UNRECOGNIZED" {
		t.Fatalf("wrong method: %d %v", rec.Code, body)
	}
	if allow := rec.Header().Get("Allow"); allow != "GET, PUT, OPTIONS" {
		t.Fatalf("Allow %q", allow)
	}
	if fmt.Sprint(observed) != "[unmatched GET 404 unmatched DELETE 405]" {
		t.Fatalf("observed %v", observed)
	}
}

func TestRecover(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("handler bug") })
	rec, logs := serve(t, h, Options{}, httptest.NewRequest("GET", "/", nil))
	if body := decode(t, rec); rec.Code != 500 || body["errcode"] != "M_UNKNOWN" {
		t.Fatalf("got %d %v", rec.Code, body)
	}
	if !strings.Contains(logs, "handler bug") || !strings.Contains(logs, "goroutine") || !strings.Contains(logs, "status=500") {
		t.Fatalf("panic, stack or access line missing from the log:\n%s", logs)
	}

	// A panic after the response started cannot change the status; the
	// client gets what was sent, the log gets the panic.
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, r, 200, map[string]any{"partial": true})
		panic("late bug")
	})
	rec, logs = serve(t, h, Options{}, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(logs, "late bug") {
		t.Fatalf("got %d, log:\n%s", rec.Code, logs)
	}

	// http.ErrAbortHandler still aborts (net/http handles it quietly).
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler to propagate", v)
			}
		}()
		serve(t, h, Options{}, httptest.NewRequest("GET", "/", nil))
	}()
}

func TestDeadline(t *testing.T) {
	var deadline time.Time
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline, _ = r.Context().Deadline()
		<-r.Context().Done()
		WriteError(w, r, r.Context().Err())
	})
	start := time.Now()
	rec, _ := serve(t, h, Options{Timeout: 50 * time.Millisecond}, httptest.NewRequest("GET", "/", nil))
	if deadline.IsZero() || deadline.Sub(start) > time.Second {
		t.Fatalf("deadline %v, want about 50ms after %v", deadline, start)
	}
	if rec.Code != 504 {
		t.Fatalf("status %d, want 504", rec.Code)
	}
	// Without a Timeout, the default applies.
	serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline, _ = r.Context().Deadline()
	}), Options{}, httptest.NewRequest("GET", "/", nil))
	if d := time.Until(deadline); d < DefaultTimeout-time.Minute || d > DefaultTimeout {
		t.Fatalf("default deadline %v ahead, want %v", d, DefaultTimeout)
	}
}

func TestCORS(t *testing.T) {
	ran := false
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		WriteJSON(w, r, 200, map[string]any{})
	})
	rec, _ := serve(t, h, Options{CORS: true}, httptest.NewRequest("OPTIONS", "/_matrix/client/v3/rooms/x/leave", nil))
	if ran || rec.Code != 200 || rec.Body.String() != "{}" {
		t.Fatalf("OPTIONS: ran=%v status %d body %q", ran, rec.Code, rec.Body)
	}
	for _, r := range []*httptest.ResponseRecorder{rec, func() *httptest.ResponseRecorder {
		rec, _ := serve(t, h, Options{CORS: true}, httptest.NewRequest("GET", "/", nil))
		return rec
	}()} {
		if r.Header().Get("Access-Control-Allow-Origin") != "*" ||
			r.Header().Get("Access-Control-Allow-Methods") != "GET, POST, PUT, DELETE, OPTIONS" ||
			r.Header().Get("Access-Control-Allow-Headers") != "X-Requested-With, Content-Type, Authorization" {
			t.Fatalf("CORS headers %v", r.Header())
		}
	}
	// Without CORS (the federation API), no headers and OPTIONS goes to the
	// router like any method.
	ran = false
	rec, _ = serve(t, h, Options{}, httptest.NewRequest("OPTIONS", "/", nil))
	if !ran || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS applied without Options.CORS")
	}
}

func TestLimitBodyRefusesDeclaredLengthUpFront(t *testing.T) {
	ran := false
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true })
	req := httptest.NewRequest("PUT", "/", strings.NewReader(strings.Repeat("a", 200)))
	rec, _ := serve(t, h, Options{MaxBodyBytes: 100}, req)
	if body := decode(t, rec); ran || rec.Code != 413 || body["errcode"] != "M_TOO_LARGE" {
		t.Fatalf("ran=%v, got %d %v", ran, rec.Code, body)
	}
	// Under the limit, ReadJSON sees the configured limit.
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		if err := ReadJSON(r, &v); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, r, 200, v)
	})
	big := `{"a":"` + strings.Repeat("x", 80000) + `"}`
	rec, _ = serve(t, h, Options{MaxBodyBytes: 100000}, httptest.NewRequest("PUT", "/", strings.NewReader(big)))
	if rec.Code != 200 {
		t.Fatalf("a body under a raised limit: %d %s", rec.Code, rec.Body)
	}
}

func TestLogHandlerKeepsRequestIDThroughWith(t *testing.T) {
	var buf logBuffer
	logger := slog.New(NewLogHandler(slog.NewTextHandler(&buf, nil))).With("component", "x")
	ctx := context.WithValue(context.Background(), requestIDKey{}, "abc123")
	logger.InfoContext(ctx, "hello")
	logger.Info("no context")
	out := buf.String()
	if !strings.Contains(out, "component=x request_id=abc123") || strings.Count(out, "request_id") != 1 {
		t.Fatalf("log:\n%s", out)
	}
	if NewLogHandler(logger.Handler()) != logger.Handler() {
		t.Fatal("wrapping twice")
	}
}

// FuzzReadJSON feeds arbitrary bodies to ReadJSON: it must never panic and
// must answer either success or a 400/413 Matrix error.
func FuzzReadJSON(f *testing.F) {
	for _, seed := range []string{`{"name":"a","count":1,"tags":["x"]}`, `[]`, `{"count":1e400}`, "\xff", `{"tags":null}`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		var dst target
		err := ReadJSON(r, &dst)
		if err == nil {
			return
		}
		var me *Error
		if !errors.As(err, &me) || (me.Status != 400 && me.Status != 413) {
			t.Fatalf("body %q: error %v is not a 400/413 Matrix error", body, err)
		}
	})
}
