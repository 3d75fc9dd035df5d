package tlsutil

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/myelin-chat/myelin/internal/config"
)

// acmeALPNProto is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeALPNProto = "acme-tls/1"

// acmeManager gets and renews the federation certificate from an ACME CA
// with the TLS-ALPN-01 challenge, answered by the federation listener
// itself through tls.Config.GetCertificate: no HTTP listener on port 80 is
// needed, but the CA connects to port 443 of the host, so the federation
// listener must be reachable there (listen on :443, or forward 443 to it).
//
// It does what golang.org/x/crypto/acme/autocert does for one host, on the
// acme package directly: autocert imports golang.org/x/net, which is not a
// dependency of Myelin.
type acmeManager struct {
	client   *acme.Client
	host     string // the name the certificate is for
	email    string
	cacheDir string

	mu         sync.Mutex
	registered bool
	cert       *tls.Certificate            // current certificate; nil before the first
	challenges map[string]*tls.Certificate // TLS-ALPN-01 certificates by host, during validation
	obtaining  chan struct{}               // closed when the order in flight ends; nil when idle
	lastErr    error                       // the last order's failure
	lastTry    time.Time
}

// Timings of the manager: renew a month before expiry like Let's Encrypt
// recommends, give one order five minutes, and wait a minute between
// failed orders so a broken setup does not hammer the CA (whose rate
// limits are strict).
// acmeHTTPClient is the client that talks to the CA; nil means
// http.DefaultClient. Tests point it at a fake CA.
var acmeHTTPClient *http.Client

const (
	acmeRenewBefore  = 30 * 24 * time.Hour
	acmeOrderTimeout = 5 * time.Minute
	acmeRetryAfter   = time.Minute
)

func newACMEManager(cfg *config.Config) (*acmeManager, error) {
	// The certificate must be valid for the host other servers connect to:
	// the delegated one when /.well-known/matrix/server delegates.
	host := hostOf(cfg.ServerName)
	if cfg.WellKnownServer != "" {
		host = hostOf(cfg.WellKnownServer)
	}
	m := &acmeManager{
		host:       host,
		email:      cfg.ACME.Email,
		cacheDir:   cfg.ACME.CacheDir,
		challenges: map[string]*tls.Certificate{},
	}
	if err := os.MkdirAll(m.cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme.cache_dir %s: %v: choose a writable directory", m.cacheDir, unwrapPath(err))
	}
	key, err := m.accountKey()
	if err != nil {
		return nil, err
	}
	dir := cfg.ACME.DirectoryURL
	if dir == "" {
		dir = acme.LetsEncryptURL
	}
	m.client = &acme.Client{Key: key, DirectoryURL: dir, UserAgent: "myelin", HTTPClient: acmeHTTPClient}
	if cert, err := m.loadCached(); err == nil {
		m.cert = cert
	}
	return m, nil
}

// accountKey loads the ACME account key from the cache, creating it once.
func (m *acmeManager) accountKey() (crypto.Signer, error) {
	path := filepath.Join(m.cacheDir, "account.key")
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := parsePrivateKey(data, path)
		if err != nil {
			return nil, fmt.Errorf("ACME account key: %v (or delete it to register a new account)", err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ACME account key %s: %v: make it readable by the server's user", path, unwrapPath(err))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("ACME account key %s: %v: check that acme.cache_dir is writable", path, unwrapPath(err))
	}
	return key, nil
}

func (m *acmeManager) certFiles() (certFile, keyFile string) {
	return filepath.Join(m.cacheDir, m.host+".crt"), filepath.Join(m.cacheDir, m.host+".key")
}

func (m *acmeManager) loadCached() (*tls.Certificate, error) {
	certFile, keyFile := m.certFiles()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

// getCertificate answers the CA's TLS-ALPN-01 validation connections with
// the challenge certificate, and every other connection with the current
// certificate, getting one first if there is none (or it has expired) and
// renewing it in the background when it is due.
func (m *acmeManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if slices.Contains(hello.SupportedProtos, acmeALPNProto) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if c := m.challenges[hello.ServerName]; c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("no ACME challenge pending for %q", hello.ServerName)
	}

	m.mu.Lock()
	now := time.Now()
	cert := m.cert
	valid := cert != nil && now.Before(cert.Leaf.NotAfter)
	if !valid || now.After(cert.Leaf.NotAfter.Add(-acmeRenewBefore)) {
		m.startOrder(now)
	}
	wait, lastErr := m.obtaining, m.lastErr
	m.mu.Unlock()
	if valid {
		return cert, nil
	}
	if wait == nil {
		return nil, fmt.Errorf("ACME certificate for %s: %v", m.host, lastErr)
	}
	ctx := hello.Context()
	if ctx == nil { // a ClientHelloInfo not made by crypto/tls
		ctx = context.Background()
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, fmt.Errorf("ACME certificate for %s: still being obtained", m.host)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cert == nil {
		return nil, fmt.Errorf("ACME certificate for %s: %v", m.host, m.lastErr)
	}
	return m.cert, nil
}

// startOrder starts getting a certificate unless one is in flight or the
// last attempt failed recently. m.mu must be held.
func (m *acmeManager) startOrder(now time.Time) {
	if m.obtaining != nil || (m.lastErr != nil && now.Sub(m.lastTry) < acmeRetryAfter) {
		return
	}
	done := make(chan struct{})
	m.obtaining, m.lastTry = done, now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), acmeOrderTimeout)
		defer cancel()
		cert, err := m.order(ctx)
		if err == nil {
			err = m.saveCached(cert)
		}
		m.mu.Lock()
		if cert != nil {
			m.cert = cert
		}
		m.lastErr = err
		m.obtaining = nil
		m.mu.Unlock()
		close(done)
	}()
}

// order runs one ACME order for m.host (RFC 8555 section 7.4).
func (m *acmeManager) order(ctx context.Context) (*tls.Certificate, error) {
	fail := func(step string, err error) (*tls.Certificate, error) {
		return nil, fmt.Errorf("%s at %s: %v", step, m.client.DirectoryURL, oneLine(err))
	}
	m.mu.Lock()
	registered := m.registered
	m.mu.Unlock()
	if !registered {
		acct := &acme.Account{}
		if m.email != "" {
			acct.Contact = []string{"mailto:" + m.email}
		}
		if _, err := m.client.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
			return fail("registering the ACME account", err)
		}
		m.mu.Lock()
		m.registered = true
		m.mu.Unlock()
	}
	o, err := m.client.AuthorizeOrder(ctx, acme.DomainIDs(m.host))
	if err != nil {
		return fail("creating the order", err)
	}
	for _, u := range o.AuthzURLs {
		if err := m.authorize(ctx, u); err != nil {
			return fail("proving control of "+m.host, err)
		}
	}
	if o, err = m.client.WaitOrder(ctx, o.URI); err != nil {
		return fail("waiting for the order", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{m.host}}, key)
	if err != nil {
		return nil, err
	}
	chain, _, err := m.client.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		return fail("finalizing the order", err)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return fail("reading the certificate", err)
	}
	if err := leaf.VerifyHostname(m.host); err != nil {
		return fail("checking the certificate", err)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// authorize answers the TLS-ALPN-01 challenge of one authorization.
func (m *acmeManager) authorize(ctx context.Context, url string) error {
	z, err := m.client.GetAuthorization(ctx, url)
	if err != nil {
		return err
	}
	if z.Status == acme.StatusValid {
		return nil // authorized by an earlier order
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "tls-alpn-01" {
			chal = c
		}
	}
	if chal == nil {
		return errors.New("the CA offers no tls-alpn-01 challenge")
	}
	cert, err := m.client.TLSALPN01ChallengeCert(chal.Token, z.Identifier.Value)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.challenges[z.Identifier.Value] = &cert
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.challenges, z.Identifier.Value)
		m.mu.Unlock()
	}()
	if _, err := m.client.Accept(ctx, chal); err != nil {
		return err
	}
	_, err = m.client.WaitAuthorization(ctx, z.URI)
	return err
}

// saveCached keeps the certificate across restarts, so a restart does not
// spend the CA's rate limit.
func (m *acmeManager) saveCached(cert *tls.Certificate) error {
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return err
	}
	certFile, keyFile := m.certFiles()
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("saving the ACME certificate key %s: %v", keyFile, unwrapPath(err))
	}
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		return fmt.Errorf("saving the ACME certificate %s: %v", certFile, unwrapPath(err))
	}
	return nil
}
