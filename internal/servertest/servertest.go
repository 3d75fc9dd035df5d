// Package servertest starts complete Myelin servers inside a Go test: real
// HTTP on 127.0.0.1 ephemeral ports, each server with its own data
// directory, database and embedded NATS, and federation over real TLS with
// certificates from a per-test CA that every server (and the test's
// federation client) trusts. Server names are "127.0.0.1:<federation port>",
// IP literals with a port, so federation between them needs no DNS; their
// federation_ip_range_allowlist exempts 127.0.0.0/8 from the default
// denylist.
//
// The database is SQLite, or a fresh PostgreSQL schema per server when
// MYELIN_TEST_POSTGRES is set (see storage/storagetest). Servers log
// through t.Log at warn level; MYELIN_TEST_LOG=debug (or info, error)
// changes that.
package servertest

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/server"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// Server is one started server and what a test needs to talk to it.
type Server struct {
	*server.Server
	// Name is the Matrix server name, "127.0.0.1:<federation port>".
	Name string
	// ClientURL is the client API's base URL, "http://127.0.0.1:<port>".
	ClientURL string
	// FederationURL is the federation API's base URL, "https://<Name>".
	FederationURL string
	// Client talks to the client API.
	Client *http.Client
	// FedClient talks to any test server's federation API over TLS,
	// trusting the test's CA.
	FedClient *http.Client
	// CA is the test's CA, shared by every server of one Start.
	CA *tlsutil.CA

	group    *[]*Server // every server of the same Start
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
	runErr   error
	running  bool

	// What Restart needs to start the same server again.
	cfg        *config.Config
	logger     *slog.Logger
	serverOpts []server.Option
}

// Option adjusts the servers Start makes.
type Option func(*options)

type options struct {
	configure  []func(i int, cfg *config.Config)
	serverOpts []server.Option
}

// WithConfig changes each server's configuration before it starts; i is the
// server's index. The listeners, name, data directory, database and TLS
// files are already set and should be left alone.
func WithConfig(f func(i int, cfg *config.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, f) }
}

// WithServerOptions passes options to every server.New.
func WithServerOptions(opts ...server.Option) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// Start starts n servers and returns them once they accept requests. They
// shut down gracefully when the test ends; a shutdown error fails the test.
func Start(t testing.TB, n int, opts ...Option) []*Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatalf("servertest: test CA: %v", err)
	}
	caDir := t.TempDir()
	caFile, _, err := ca.WriteCA(caDir)
	if err != nil {
		t.Fatalf("servertest: test CA: %v", err)
	}
	fedClient := newClient(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})

	servers := make([]*Server, n)
	for i := range servers {
		servers[i] = start(t, i, ca, caFile, fedClient, &servers, &o)
	}
	return servers
}

func start(t testing.TB, i int, ca *tlsutil.CA, caFile string, fedClient *http.Client, group *[]*Server, o *options) *Server {
	t.Helper()
	clientLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	fedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		clientLn.Close()
		t.Fatalf("servertest: %v", err)
	}
	name := fedLn.Addr().String()

	dir := t.TempDir()
	cfg := config.Default()
	cfg.ServerName = name
	cfg.DataDir = dir
	cfg.ConfigPath = filepath.Join(dir, "myelin.yaml")
	cfg.ClientListen = clientLn.Addr().String()
	cfg.FederationListen = name
	cfg.SigningKeyPath = filepath.Join(dir, "signing.key")
	cfg.ACME.CacheDir = filepath.Join(dir, "acme")
	cfg.Media.StorePath = filepath.Join(dir, "media")
	cfg.Database = "sqlite:" + filepath.Join(dir, "myelin.db")
	if os.Getenv(storagetest.EnvPostgres) != "" {
		cfg.Database = storagetest.DSN(t, storage.PostgreSQL)
	}
	cfg.TLSCert, cfg.TLSKey, err = ca.IssueFiles(filepath.Join(dir, "tls"), "127.0.0.1")
	if err != nil {
		t.Fatalf("servertest: certificate: %v", err)
	}
	cfg.FederationTrustCA = caFile
	// The servers listen on 127.0.0.1, which federation_ip_range_denylist
	// refuses by default.
	cfg.FederationIPRangeAllowlist = "127.0.0.0/8"
	cfg.NoRateLimit = true
	// Accounts for tests: anyone may register (RegisterUser relies on it;
	// registration tests turn it off with WithConfig), and bcrypt at its
	// lowest cost, since a test logs in far more often than an attacker.
	cfg.OpenRegistration = true
	cfg.BcryptCost = 4
	for _, f := range o.configure {
		f(i, cfg)
	}

	logger := slog.New(slog.NewTextHandler(&testLogWriter{t: t}, &slog.HandlerOptions{Level: testLogLevel()})).
		With("server", name)
	s := &Server{
		Name:          name,
		ClientURL:     "http://" + clientLn.Addr().String(),
		FederationURL: "https://" + name,
		Client:        newClient(nil),
		FedClient:     fedClient,
		CA:            ca,
		group:         group,
		cfg:           cfg,
		logger:        logger,
		serverOpts:    o.serverOpts,
	}
	if err := s.run(clientLn, fedLn); err != nil {
		t.Fatalf("servertest: server %d: %v", i, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("servertest: server %s: %v", name, err)
		}
	})
	return s
}

// run builds the server on the listeners and runs it until Stop.
func (s *Server) run(clientLn, fedLn net.Listener) error {
	srv, err := server.New(s.cfg, s.logger, append([]server.Option{server.WithListeners(clientLn, fedLn)}, s.serverOpts...)...)
	if err != nil {
		clientLn.Close()
		fedLn.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.Server, s.cancel, s.done = srv, cancel, make(chan error, 1)
	s.stopOnce, s.runErr, s.running = sync.Once{}, nil, true
	go func() { s.done <- srv.Run(ctx) }()
	return nil
}

// Restart starts a stopped server again: the same name and listening
// addresses, data directory, database and configuration, as a server
// process restarted after an outage would be. It fails the test if the
// server is running or its addresses cannot be taken again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.running {
		t.Fatalf("servertest: restart %s: the server is running", s.Name)
	}
	if s.runErr != nil {
		t.Fatalf("servertest: restart %s: its last run ended with %v", s.Name, s.runErr)
	}
	clientLn, err := net.Listen("tcp", s.cfg.ClientListen)
	if err != nil {
		t.Fatalf("servertest: restart %s: %v", s.Name, err)
	}
	fedLn, err := net.Listen("tcp", s.cfg.FederationListen)
	if err != nil {
		clientLn.Close()
		t.Fatalf("servertest: restart %s: %v", s.Name, err)
	}
	if err := s.run(clientLn, fedLn); err != nil {
		t.Fatalf("servertest: restart %s: %v", s.Name, err)
	}
}

// Stop shuts the server down gracefully and returns Run's error. Later
// calls return the same error; the test's cleanup calls it too.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		// An HTTP/2 server's graceful shutdown waits up to a second for
		// each client to close its idle connection after the GOAWAY; the
		// clients of a test close theirs now instead.
		s.Client.CloseIdleConnections()
		s.FedClient.CloseIdleConnections()
		for _, other := range *s.group {
			if other != nil {
				other.FederationClient().CloseIdleConnections()
				other.SignedFederationClient().CloseIdleConnections()
			}
		}
		s.cancel()
		select {
		case s.runErr = <-s.done:
		case <-time.After(time.Minute):
			s.runErr = fmt.Errorf("did not shut down within a minute")
		}
		s.running = false
	})
	return s.runErr
}

func newClient(tc *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // tests talk to 127.0.0.1 directly, whatever the environment says
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// testLogLevel is warn, or what MYELIN_TEST_LOG says (debug, info, warn,
// error): servers log through t.Log, shown for failed tests and with -v.
func testLogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("MYELIN_TEST_LOG"))); err != nil {
		return slog.LevelWarn
	}
	return l
}

// testLogWriter sends log lines to t.Log, until the test has finished:
// after that, t.Log panics, and a straggling goroutine's line is dropped.
type testLogWriter struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
