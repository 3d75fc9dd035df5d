package tlsutil

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/myelin-chat/myelin/internal/config"
)

// acmeHTTPClient is the client that talks to the CA; nil means
// http.DefaultClient. Tests point it at a fake CA.
var acmeHTTPClient *http.Client

// acmeConfig is the TLS configuration of a federation listener whose
// certificate comes from an ACME CA through autocert, which orders it on
// the first connection, keeps it (and the account key) in the cache
// directory across restarts, renews it in the background in the last third
// of its lifetime, and waits a minute after a failed order before asking
// the CA again (its rate limits are strict).
//
// The challenge is TLS-ALPN-01, answered by the federation listener itself
// (hence acme-tls/1 next to h2 and http/1.1 in NextProtos): no HTTP
// listener on port 80 is needed, but the CA connects to port 443 of the
// host, so the federation listener must be reachable there (listen on
// :443, or forward 443 to it).
func acmeConfig(cfg *config.Config) (*tls.Config, error) {
	// The certificate must be valid for the host other servers connect to:
	// the delegated one when /.well-known/matrix/server delegates.
	host := hostOf(cfg.ServerName)
	if cfg.WellKnownServer != "" {
		host = hostOf(cfg.WellKnownServer)
	}
	cacheDir := cfg.ACME.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(cfg.DataDir, "acme")
	}
	// autocert creates the directory on its first write, during the first
	// handshake; creating it now turns a bad path into a startup error.
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme.cache_dir %s: %v: choose a writable directory", cacheDir, unwrapPath(err))
	}
	dir := cfg.ACME.DirectoryURL
	if dir == "" {
		dir = autocert.DefaultACMEDirectory
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(host),
		Cache:      autocert.DirCache(cacheDir),
		Email:      cfg.ACME.Email,
		Client:     &acme.Client{DirectoryURL: dir, UserAgent: "myelin", HTTPClient: acmeHTTPClient},
	}
	tc := m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		// autocert picks the certificate by SNI and refuses a hello
		// without it; a server has one certificate, so a client that
		// connects by IP address (no SNI) gets it too.
		if hello.ServerName == "" {
			h := *hello
			h.ServerName = host
			hello = &h
		}
		cert, err := m.GetCertificate(hello)
		if err != nil {
			return nil, fmt.Errorf("ACME certificate for %s from %s: %s", hello.ServerName, dir, oneLine(err))
		}
		return cert, nil
	}
	return tc, nil
}
