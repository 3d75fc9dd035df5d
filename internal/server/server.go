// Package server is Myelin's composition root: from a config.Config it
// opens the data directory, the signing keys, the database and the bus,
// builds the TLS configurations and every API, and serves the client API
// (plain HTTP, with /metrics) and the federation API (HTTPS).
//
// Run serves until its context ends, then shuts down gracefully: both
// listeners stop accepting, requests in flight finish (bounded by
// shutdown_timeout), the bus drains and the database closes.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi"
	"github.com/myelin-chat/myelin/clientapi/e2ee"
	"github.com/myelin-chat/myelin/federation"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/federation/handshake"
	"github.com/myelin-chat/myelin/federation/sender"
	"github.com/myelin-chat/myelin/federation/serverkeys"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/internal/metrics"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/mediaapi"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi"
	"github.com/myelin-chat/myelin/syncapi/push"
)

// Server is one running homeserver.
type Server struct {
	cfg             *config.Config
	logger          *slog.Logger
	shutdownTimeout time.Duration

	keys      *keys.Ring
	db        *storage.DB
	bus       *bus.Bus
	rs        *roomserver.Roomserver
	sync      *syncapi.API
	fedSender *sender.Sender
	e2ee      *e2ee.Service
	media     *mediaapi.API
	push      *push.Service
	metrics   *metrics.Registry
	fedClient *http.Client
	// fedSigned sends signed requests to other servers; serverKeys keeps
	// their keys.
	fedSigned  *fedclient.Client
	serverKeys *serverkeys.Store

	clientLn, fedLn   net.Listener
	clientSrv, fedSrv *http.Server
	// handBack feeds clientSrv the connections of answered parked
	// requests (held /sync long-polls).
	handBack *handBackListener

	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

// Option adjusts New.
type Option func(*options)

type options struct {
	clientLn, fedLn net.Listener
	keyValidity     time.Duration
	requestTimeout  time.Duration
	clientRoutes    []func(*mux.Router)
	pushMinBackoff  time.Duration
	pushMaxBackoff  time.Duration
}

// WithListeners serves on the given listeners instead of opening
// cfg.ClientListen and cfg.FederationListen (tests listen on port 0 first to
// learn the port, which is part of the server name). The server owns them
// from then on, also when New fails.
func WithListeners(client, federation net.Listener) Option {
	return func(o *options) { o.clientLn, o.fedLn = client, federation }
}

// WithKeyValidity sets how long a published key response is valid
// (valid_until_ts); the default is federation.DefaultKeyValidity, one day.
func WithKeyValidity(d time.Duration) Option {
	return func(o *options) { o.keyValidity = d }
}

// WithRequestTimeout sets the deadline of every request; the default is
// httputil.DefaultTimeout.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) { o.requestTimeout = d }
}

// WithPushBackoff sets the first and the longest delay between retries of
// a failing push gateway (push.DefaultMinBackoff and DefaultMaxBackoff by
// default), for tests.
func WithPushBackoff(minDelay, maxDelay time.Duration) Option {
	return func(o *options) { o.pushMinBackoff, o.pushMaxBackoff = minDelay, maxDelay }
}

// WithClientRoutes adds routes to the client API router after the built-in
// modules, behind the same middleware (errors, CORS, r0 routing, metrics).
// For tests and for embedding Myelin with extra endpoints.
func WithClientRoutes(register func(r *mux.Router)) Option {
	return func(o *options) { o.clientRoutes = append(o.clientRoutes, register) }
}

// New builds a server from cfg: it creates the data directory, loads or
// generates the signing key, opens (and migrates) the database, opens the
// bus, prepares TLS and binds the listeners, so that every startup problem
// surfaces here, as an error naming the setting to fix. Nothing is served
// until Run.
func New(cfg *config.Config, logger *slog.Logger, opts ...Option) (_ *Server, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	// Whatever New opened is closed again if a later step fails. (The
	// result is unnamed: the undo functions use s, which a "return nil,
	// err" must not clear.)
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	for _, ln := range []net.Listener{o.clientLn, o.fedLn} {
		if ln != nil {
			undo = append(undo, func() { ln.Close() })
		}
	}

	if cfg == nil {
		return nil, errors.New("server: no configuration")
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = slog.New(httputil.NewLogHandler(logger.Handler()))
	if cfg.ServerName == "" {
		return nil, errors.New("server_name is empty: set it to the name in your users' IDs (check --server-name)")
	}
	if err := config.ValidServerName(cfg.ServerName); err != nil {
		return nil, fmt.Errorf("server_name %q: %v (check --server-name)", cfg.ServerName, err)
	}
	shutdownTimeout, err := parseShutdownTimeout(cfg.ShutdownTimeout)
	if err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("data_dir is empty: set the directory for the server's files (check --data-dir)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir %q: cannot create it: %v (check --data-dir and its permissions)", cfg.DataDir, err)
	}

	s := &Server{cfg: cfg, logger: logger, shutdownTimeout: shutdownTimeout, metrics: metrics.New()}

	keyPath := cfg.SigningKeyPath
	if keyPath == "" {
		keyPath = filepath.Join(cfg.DataDir, "signing.key")
	}
	if s.keys, err = keys.LoadOrGenerate(keyPath); err != nil {
		return nil, err
	}

	dsn := cfg.Database
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(cfg.DataDir, "myelin.db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.db, err = storage.Open(ctx, dsn); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.db.Close() })

	if s.bus, err = bus.Open(ctx, bus.Config{
		URL:       cfg.NATS,
		DataDir:   cfg.DataDir,
		Namespace: bus.NamespaceFor(cfg.ServerName),
		Logger:    logger,
	}); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.bus.Close() })

	fedTLS, err := tlsutil.FederationServerConfig(cfg)
	if err != nil {
		return nil, err
	}
	outTLS, err := tlsutil.OutboundConfig(cfg)
	if err != nil {
		return nil, err
	}
	deny, allow, err := cfg.FederationIPRanges()
	if err != nil {
		return nil, err
	}
	ipFilter := fedclient.NewIPFilter(deny, allow)
	s.fedClient = newFederationClient(outTLS, ipFilter)
	if s.fedSigned, err = fedclient.New(fedclient.Config{
		ServerName: cfg.ServerName,
		Keys:       s.keys,
		TLS:        outTLS,
		UserAgent:  ImplementationName + "/" + Version(),
		Logger:     logger,
		IPFilter:   ipFilter,
	}); err != nil {
		return nil, err
	}
	if s.serverKeys, err = serverkeys.New(serverkeys.Config{
		DB:         s.db,
		Client:     s.fedSigned,
		ServerName: cfg.ServerName,
		Keys:       s.keys,
		Notaries:   cfg.TrustedKeyServerList(),
		Logger:     logger,
	}); err != nil {
		return nil, err
	}

	// The notifier evaluates push rules on each new room event inside
	// the roomserver's transaction (so unread counts commit with their
	// event) and delivers to push gateways; it stops before the bus
	// closes, after the roomserver.
	if s.push, err = push.New(push.Config{
		DB: s.db, Bus: s.bus, ServerName: cfg.ServerName, Logger: logger, HTTPClient: newPushClient(cfg, logger),
		MinBackoff: o.pushMinBackoff, MaxBackoff: o.pushMaxBackoff,
	}); err != nil {
		return nil, err
	}
	if err := s.push.Start(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, s.push.Stop)

	if s.rs, err = roomserver.New(roomserver.Deps{
		DB:         s.db,
		Bus:        s.bus,
		ServerName: cfg.ServerName,
		Keys:       s.keys,
		Logger:     logger,
		ServerKeys: s.serverKeys,
		Observer:   s.push,
	}); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.rs.Close() })

	// The federation sender resumes its queues and follows the room
	// output from here on; it stops before the bus closes.
	if s.fedSender, err = sender.New(sender.Config{
		DB: s.db, Bus: s.bus, Roomserver: s.rs, Client: s.fedSigned, ServerName: cfg.ServerName, Logger: logger,
	}); err != nil {
		return nil, err
	}
	if err := s.fedSender.Start(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, s.fedSender.Stop)

	authn := clientapi.NewAuthenticator(s.db, cfg)
	// Other processes on this database keep checked access tokens too:
	// revocations go both ways on the bus.
	if err := authn.ShareRevocations(ctx, s.bus); err != nil {
		return nil, fmt.Errorf("access token revocations on the bus: %w", err)
	}
	if s.media, err = mediaapi.New(mediaapi.Deps{
		Config: cfg, DB: s.db, Auth: authn, Federation: s.fedSigned, FederationIPFilter: ipFilter, Logger: logger,
	}); err != nil {
		return nil, err
	}
	undo = append(undo, s.media.Close)

	// End-to-end encryption keys, shared by the client and federation
	// APIs: other servers query and claim our users' keys through it.
	if s.e2ee, err = e2ee.New(e2ee.Config{
		DB: s.db, ServerName: cfg.ServerName, Bus: s.bus, Federation: s.fedSigned, EDUs: s.fedSender, Logger: logger,
	}); err != nil {
		return nil, err
	}
	keysSvc := s.e2ee
	// Sends our users' device list changes to other servers, fetches
	// other servers' users' lists again when an update was missed, and
	// stops trusting those no longer shared.
	if err := keysSvc.Start(ctx); err != nil {
		return nil, err
	}
	undo = append(undo, keysSvc.Close)

	fed, err := federation.New(federation.Deps{
		Config:      cfg,
		Keys:        s.keys,
		DB:          s.db,
		Roomserver:  s.rs,
		ServerKeys:  s.serverKeys,
		Client:      s.fedSigned,
		Version:     Version(),
		KeyValidity: o.keyValidity,
		// A server that signs a request to us is up: send it what waits.
		OnRemoteContact: s.fedSender.Wake,
		Media:           s.media,
		Bus:             s.bus,
		E2EE:            keysSvc,
	})
	if err != nil {
		return nil, err
	}
	// End-to-end encryption over federation: to-device messages, device
	// list and cross-signing key updates of other servers' users.
	fed.HandleEDU("m.direct_to_device", keysSvc.ReceiveToDevice)
	fed.HandleEDU("m.device_list_update", keysSvc.ReceiveDeviceListUpdate)
	fed.HandleEDU("m.signing_key_update", keysSvc.ReceiveSigningKeyUpdate)
	clientRouter := httputil.NewRouter()
	remote := handshake.New(handshake.Deps{Client: s.fedSigned, Roomserver: s.rs, Keys: s.keys, ServerName: cfg.ServerName, Logger: logger})
	clientapi.New(clientapi.Deps{Config: cfg, DB: s.db, Auth: authn, Roomserver: s.rs, Federation: remote, E2EE: keysSvc, Bus: s.bus}).Register(clientRouter)
	syncDeps := syncapi.Deps{DB: s.db, Bus: s.bus, Auth: authn, ServerName: cfg.ServerName, Logger: logger, Backfiller: remote}
	if cfg.SearchIndex {
		syncDeps.SearchIndexPath = filepath.Join(cfg.DataDir, "search.bleve")
	}
	if s.sync, err = syncapi.New(syncDeps); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.sync.Close() })
	s.sync.Register(clientRouter)
	s.media.Register(clientRouter)
	fed.RegisterWellKnown(clientRouter)
	clientRouter.Handle("/metrics", s.metrics.Handler(logger)).Methods(http.MethodGet)
	for _, register := range o.clientRoutes {
		register(clientRouter)
	}
	fedRouter := httputil.NewRouter()
	fed.Register(fedRouter)
	s.media.RegisterLegacyFederation(fedRouter)

	s.handBack = newHandBackListener()
	s.clientSrv = s.newHTTPServer("client", clientRouter, true, o.requestTimeout, cfg.MaxRequestBodyBytes, s.handBack.handBack)
	// Media uploads are mounted outside the general body limit, with the
	// upload size limit and a deadline long enough for large files.
	uploads := s.wrap("client", clientRouter, true, mediaapi.TransferTimeout, s.media.MaxUploadBodyBytes(), nil)
	others := s.clientSrv.Handler
	s.clientSrv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mediaapi.IsUploadPath(r.Method, r.URL.Path) {
			uploads.ServeHTTP(w, r)
			return
		}
		others.ServeHTTP(w, r)
	})
	// The federation router applies the per-route limits itself.
	s.fedSrv = s.newHTTPServer("federation", fedRouter, false, o.requestTimeout, federation.MaxBodyBytes(cfg.MaxRequestBodyBytes), nil)
	s.fedSrv.TLSConfig = fedTLS

	if s.clientLn = o.clientLn; s.clientLn == nil {
		if s.clientLn, err = listen("client_listen", "--client-listen", cfg.ClientListen); err != nil {
			return nil, err
		}
		undo = append(undo, func() { s.clientLn.Close() })
	}
	if s.fedLn = o.fedLn; s.fedLn == nil {
		if s.fedLn, err = listen("federation_listen", "--federation-listen", cfg.FederationListen); err != nil {
			return nil, err
		}
		undo = append(undo, func() { s.fedLn.Close() })
	}
	return s, nil
}

// newHTTPServer wraps router in the common middleware and bounds the
// connection's phases; the request deadline itself is the middleware's.
func (s *Server) newHTTPServer(name string, router http.Handler, cors bool, timeout time.Duration, maxBody int64, handBack func(net.Conn)) *http.Server {
	logger := s.logger.With("listener", name)
	if timeout <= 0 {
		timeout = httputil.DefaultTimeout
	}
	return &http.Server{
		Handler:           s.wrap(name, router, cors, timeout, maxBody, handBack),
		ReadHeaderTimeout: 10 * time.Second,
		// A handler that ignores its context's deadline still cannot keep
		// writing to a client forever.
		WriteTimeout: timeout + 10*time.Second,
		IdleTimeout:  2 * time.Minute,
		// net/http's own messages are mostly TLS handshakes from scanners.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// wrap puts router behind the common middleware (httputil.Wrap).
func (s *Server) wrap(name string, router http.Handler, cors bool, timeout time.Duration, maxBody int64, handBack func(net.Conn)) http.Handler {
	if timeout <= 0 {
		timeout = httputil.DefaultTimeout
	}
	return httputil.Wrap(router, httputil.Options{
		Logger:       s.logger.With("listener", name),
		Observe:      s.metrics.ObserveHTTP,
		CORS:         cors,
		Timeout:      timeout,
		MaxBodyBytes: maxBody,
		HandBack:     handBack,
	})
}

// newFederationClient is a plain HTTPS client with the outbound TLS
// configuration and the same refused address ranges, for unsigned requests
// to a known URL; federation requests go through fedclient
// (SignedFederationClient).
func newFederationClient(tc *tls.Config, ipFilter *fedclient.IPFilter) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // federation goes direct, as in Synapse
			TLSClientConfig:       tc,
			ForceAttemptHTTP2:     true,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: ipFilter.Control}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
		},
		// Callers pass a context with their own deadline; this bounds the
		// ones that forget.
		Timeout: 2 * time.Minute,
	}
}

// newPushClient is the HTTP client of pushes to push gateways: it refuses
// the addresses of federation_ip_range_denylist's default (private,
// loopback, link-local, reserved) unless push_allow_private_addresses, so
// that a pusher cannot make the server reach its own network, and checks
// certificates unless push_insecure_skip_verify.
func newPushClient(cfg *config.Config, logger *slog.Logger) *http.Client {
	var refuse func(netip.Addr) error
	if !cfg.PushAllowPrivateAddresses {
		refuse = fedclient.DefaultIPFilter().Check
	}
	if cfg.PushInsecureSkipVerify {
		logger.Warn("push_insecure_skip_verify is set: push gateways' certificates are not checked")
	}
	return push.NewGatewayClient(refuse, cfg.PushInsecureSkipVerify)
}

func listen(setting, flag, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, fmt.Errorf("%s is empty: set the address to listen on, e.g. :8008 (check %s)", setting, flag)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: cannot listen: %v (check %s; is another program using the port?)", setting, addr, err, flag)
	}
	return ln, nil
}

func parseShutdownTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 10 * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("shutdown_timeout %q: not a positive Go duration such as 10s (check --shutdown-timeout)", s)
	}
	return d, nil
}

// Run serves both APIs until ctx is done, then shuts down gracefully:
// the listeners stop accepting, requests in flight finish (for at most
// shutdown_timeout, after which their connections are closed), then the bus
// drains and the database closes. It returns nil after a shutdown asked for
// through ctx, or the error that stopped a listener. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	ran := false
	s.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("server: Run called twice")
	}

	defer startMemoryTrimmer(s.logger)()

	serveErr := make(chan error, 3)
	s.handBack.addr = s.clientLn.Addr()
	go func() { serveErr <- s.clientSrv.Serve(s.clientLn) }()
	go func() { serveErr <- s.clientSrv.Serve(s.handBack) }()
	go func() { serveErr <- s.fedSrv.ServeTLS(s.fedLn, "", "") }()
	s.logger.Info("serving", "server_name", s.cfg.ServerName,
		"client", s.clientLn.Addr().String(), "federation", s.fedLn.Addr().String())

	var runErr error
	pending := 3
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		pending--
		runErr = fmt.Errorf("server stopped: %w", err)
		s.logger.Error("a listener failed; shutting down", "err", err)
	}

	s.logger.Info("shutting down", "timeout", s.shutdownTimeout)
	// Held /sync long-polls answer now rather than at their timeout.
	s.sync.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{s.clientSrv, s.fedSrv} {
		wg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil {
				s.logger.Warn("requests still running at the end of shutdown_timeout; closing their connections", "err", err)
				srv.Close()
			}
		})
	}
	wg.Wait()
	for ; pending > 0; pending-- {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
			runErr = fmt.Errorf("server stopped: %w", err)
		}
	}
	if err := s.release(); err != nil && runErr == nil {
		runErr = err
	}
	s.logger.Info("stopped")
	return runErr
}

// Close releases everything New opened, for a server that will not Run
// (Run releases them itself).
func (s *Server) Close() error {
	s.runOnce.Do(func() {})
	s.clientLn.Close()
	s.fedLn.Close()
	return s.release()
}

// release stops the roomserver (finishing and publishing its queued
// work), closes the bus (draining it) and then the database.
func (s *Server) release() error {
	s.closeOnce.Do(func() {
		s.fedClient.CloseIdleConnections()
		s.fedSigned.CloseIdleConnections()
		s.sync.Close()
		s.media.Close()
		s.rs.Close()
		// Before the sender it wakes and the database it reads.
		s.e2ee.Close()
		// After the roomserver, whose last events they may still queue.
		s.fedSender.Stop()
		s.push.Stop()
		s.closeErr = errors.Join(s.bus.Close(), s.db.Close())
	})
	return s.closeErr
}

// ServerName is the server's Matrix server name.
func (s *Server) ServerName() string { return s.cfg.ServerName }

// Config is the configuration the server was built from.
func (s *Server) Config() *config.Config { return s.cfg }

// ClientAddr is the address of the client API listener.
func (s *Server) ClientAddr() net.Addr { return s.clientLn.Addr() }

// FederationAddr is the address of the federation API listener.
func (s *Server) FederationAddr() net.Addr { return s.fedLn.Addr() }

// Keys is the server's signing key ring.
func (s *Server) Keys() *keys.Ring { return s.keys }

// Roomserver is the server's room component.
func (s *Server) Roomserver() *roomserver.Roomserver { return s.rs }

// DB is the server's database.
func (s *Server) DB() *storage.DB { return s.db }

// Bus is the server's message bus.
func (s *Server) Bus() *bus.Bus { return s.bus }

// Metrics is the server's metrics registry.
func (s *Server) Metrics() *metrics.Registry { return s.metrics }

// FederationClient is a plain HTTPS client with the outbound TLS
// configuration (system roots plus federation_trust_ca), for unsigned
// requests to a URL. Requests to other servers by name, signed, go through
// SignedFederationClient.
func (s *Server) FederationClient() *http.Client { return s.fedClient }

// SignedFederationClient sends requests to other servers signed with the
// server's key, finding them through server discovery.
func (s *Server) SignedFederationClient() *fedclient.Client { return s.fedSigned }

// Media is the server's media repository.
func (s *Server) Media() *mediaapi.API { return s.media }

// ServerKeys keeps other servers' signing keys.
func (s *Server) ServerKeys() *serverkeys.Store { return s.serverKeys }

// ImplementationName is the software's name in the User-Agent of outbound
// federation requests.
const ImplementationName = "Myelin"

// Version is this build's version: the module version when built from a
// tagged module, else "dev".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
