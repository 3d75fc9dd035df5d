package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/server"
	"github.com/myelin-chat/myelin/internal/servertest"
)

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestMetrics(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	for range 3 {
		get(t, a.Client, a.ClientURL+"/_matrix/client/versions")
	}
	get(t, a.Client, a.ClientURL+"/_matrix/client/v3/nothing/here")
	get(t, a.FedClient, a.FederationURL+"/_matrix/federation/v1/version")

	resp, body := get(t, a.Client, a.ClientURL+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`myelin_http_requests_total{code="200",method="GET",route="/_matrix/client/versions"} 3`,
		// Route templates, never raw paths, as labels.
		`myelin_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`myelin_http_requests_total{code="200",method="GET",route="/_matrix/federation/v1/version"} 1`,
		`myelin_http_request_duration_seconds_count{method="GET",route="/_matrix/client/versions"} 3`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "/nothing/here") {
		t.Error("a raw path became a label")
	}
	// Each server counts its own requests.
	_, body = get(t, b.Client, b.ClientURL+"/metrics")
	if strings.Contains(body, `route="/_matrix/client/versions"`) {
		t.Error("server b reports server a's requests")
	}
	// /metrics is on the client listener only.
	if resp, _ := get(t, a.FedClient, a.FederationURL+"/metrics"); resp.StatusCode != 404 {
		t.Errorf("federation /metrics: %d, want 404", resp.StatusCode)
	}
}

func TestRequestIDDeadlineAndPanic(t *testing.T) {
	routes := func(r *mux.Router) {
		r.HandleFunc("/_matrix/client/v3/myelin.test/deadline", func(w http.ResponseWriter, req *http.Request) {
			d, ok := req.Context().Deadline()
			httputil.WriteJSON(w, req, 200, map[string]any{"has_deadline": ok, "in_ms": time.Until(d).Milliseconds()})
		})
		r.HandleFunc("/_matrix/client/v3/myelin.test/panic", func(w http.ResponseWriter, req *http.Request) {
			panic("test panic")
		})
	}
	s := servertest.Start(t, 1, servertest.WithServerOptions(
		server.WithClientRoutes(routes), server.WithRequestTimeout(7*time.Second)))[0]

	resp, body := get(t, s.Client, s.ClientURL+"/_matrix/client/v3/myelin.test/deadline")
	var d struct {
		HasDeadline bool  `json:"has_deadline"`
		InMS        int64 `json:"in_ms"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil || !d.HasDeadline || d.InMS > 7000 || d.InMS < 6000 {
		t.Fatalf("deadline: %s (%v)", body, err)
	}
	if resp.Header.Get(httputil.RequestIDHeader) == "" {
		t.Fatal("no request ID header")
	}

	resp, body = get(t, s.Client, s.ClientURL+"/_matrix/client/v3/myelin.test/panic")
	if resp.StatusCode != 500 || !strings.Contains(body, `"M_UNKNOWN"`) {
		t.Fatalf("panic: %d %s", resp.StatusCode, body)
	}
	// And the server is still serving.
	if resp, _ := get(t, s.Client, s.ClientURL+"/_matrix/client/versions"); resp.StatusCode != 200 {
		t.Fatalf("after a panic: %d", resp.StatusCode)
	}
}

// slowRoute registers an endpoint that signals when it starts and answers
// only when released.
func slowRoute(started chan<- struct{}, release <-chan struct{}) func(*mux.Router) {
	return func(r *mux.Router) {
		r.HandleFunc("/_matrix/client/v3/myelin.test/slow", func(w http.ResponseWriter, req *http.Request) {
			started <- struct{}{}
			<-release
			httputil.WriteJSON(w, req, 200, map[string]bool{"done": true})
		})
	}
}

func TestGracefulShutdownCompletesInFlightRequest(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	s := servertest.Start(t, 1, servertest.WithServerOptions(server.WithClientRoutes(slowRoute(started, release))))[0]

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := s.Client.Get(s.ClientURL + "/_matrix/client/v3/myelin.test/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-started

	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	// No new connections while shutting down.
	if c, err := net.DialTimeout("tcp", s.ClientAddr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the client listener still accepts connections during shutdown")
	}

	close(release)
	r := <-got
	if r.err != nil || r.status != 200 || !strings.Contains(r.body, `"done":true`) {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestShutdownTimeoutBoundsTheWait(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	s := servertest.Start(t, 1,
		servertest.WithConfig(func(_ int, cfg *config.Config) { cfg.ShutdownTimeout = "300ms" }),
		servertest.WithServerOptions(server.WithClientRoutes(slowRoute(started, release))))[0]
	go func() {
		resp, err := s.Client.Get(s.ClientURL + "/_matrix/client/v3/myelin.test/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	begin := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("shutdown took %v with a 300ms shutdown_timeout", d)
	}
}

// newConfig is a configuration for server.New on 127.0.0.1 in dir, with
// the federation certificate self-signed by the server.
func newConfig(dir string) *config.Config {
	cfg := config.Default()
	cfg.ServerName = "localhost"
	cfg.DataDir = dir
	cfg.ConfigPath = filepath.Join(dir, "myelin.yaml")
	cfg.Database = "sqlite:" + filepath.Join(dir, "myelin.db")
	cfg.SigningKeyPath = filepath.Join(dir, "signing.key")
	cfg.ACME.CacheDir = filepath.Join(dir, "acme")
	cfg.Media.StorePath = filepath.Join(dir, "media")
	cfg.ClientListen = "127.0.0.1:0"
	cfg.FederationListen = "127.0.0.1:0"
	return cfg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestStartupErrorsNameTheSetting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name   string
		change func(cfg *config.Config)
		want   []string
	}{
		{"no server name", func(c *config.Config) { c.ServerName = "" }, []string{"server_name", "--server-name"}},
		{"bad server name", func(c *config.Config) { c.ServerName = "exa mple" }, []string{"server_name", "--server-name"}},
		{"bad shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = "soon" }, []string{"shutdown_timeout", "--shutdown-timeout"}},
		{"data dir is a file", func(c *config.Config) {
			f := filepath.Join(c.DataDir, "file")
			_ = os.WriteFile(f, nil, 0o600)
			c.DataDir = filepath.Join(f, "sub")
		}, []string{"data_dir", "--data-dir"}},
		{"unknown database", func(c *config.Config) { c.Database = "mysql://x" }, []string{"database", "--database"}},
		{"unreachable nats", func(c *config.Config) { c.NATS = "nats://127.0.0.1:1" }, []string{`nats "nats://127.0.0.1:1"`, "--nats"}},
		{"missing certificate", func(c *config.Config) {
			c.TLSCert, c.TLSKey = filepath.Join(c.DataDir, "none.crt"), filepath.Join(c.DataDir, "none.key")
		}, []string{"tls_cert"}},
		{"client port taken", func(c *config.Config) { c.ClientListen = busy.Addr().String() }, []string{"client_listen", "--client-listen"}},
		{"federation port taken", func(c *config.Config) { c.FederationListen = busy.Addr().String() }, []string{"federation_listen", "--federation-listen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := newConfig(dir)
			tc.change(cfg)
			s, err := server.New(cfg, quietLogger())
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			// What the failed New opened is closed again: a correct
			// configuration starts on the same data directory.
			s, err = server.New(newConfig(dir), quietLogger())
			if err != nil {
				t.Fatalf("after the failure, a good config: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRestartKeepsIdentity runs a server, stops it and starts it again on
// the same data directory: same signing key, and the stored state reopens.
func TestRestartKeepsIdentity(t *testing.T) {
	dir := t.TempDir()
	run := func() string {
		s, err := server.New(newConfig(dir), quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		resp, body := get(t, http.DefaultClient, "http://"+s.ClientAddr().String()+"/_matrix/client/versions")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := s.Run(context.Background()); err == nil {
			t.Fatal("Run ran twice")
		}
		id, _ := s.Keys().Current()
		return id
	}
	first, second := run(), run()
	if first != second {
		t.Fatalf("signing key changed across a restart: %s then %s", first, second)
	}
}

func TestNewWithoutConfig(t *testing.T) {
	if _, err := server.New(nil, nil); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("New(nil): %v", err)
	}
}
