package tlsutil

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
)

// fakeACME is a minimal RFC 8555 CA for one order at a time. It validates
// the TLS-ALPN-01 challenge for real, by connecting to the server under
// test with ALPN acme-tls/1 and checking the acmeIdentifier extension, and
// signs the CSR with a test CA.
type fakeACME struct {
	t        *testing.T
	srv      *httptest.Server
	ca       *CA
	target   string // address of the TLS listener under test
	validity time.Duration

	mu         sync.Mutex
	nonce      int
	orders     int
	failOrders bool
	thumb      string // JWK thumbprint of the account key, from the newAccount request
	host       string
	authz      string // status of the authorization (and its challenge): pending, valid or invalid
	certDER    []byte
}

func newFakeACME(t *testing.T, ca *CA) *fakeACME {
	f := &fakeACME{t: t, ca: ca, validity: 90 * 24 * time.Hour}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeACME) url(path string) string { return f.srv.URL + path }

func (f *fakeACME) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nonce++
	w.Header().Set("Replay-Nonce", fmt.Sprintf("nonce%d", f.nonce))
	w.Header().Set("Content-Type", "application/json")
	reply := func(status int, v any) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	order := func() map[string]any {
		status := map[string]string{"pending": "pending", "valid": "ready", "invalid": "invalid"}[f.authz]
		o := map[string]any{"status": status, "identifiers": []any{map[string]string{"type": "dns", "value": f.host}},
			"authorizations": []string{f.url("/authz/1")}, "finalize": f.url("/finalize/1")}
		if f.certDER != nil {
			o["status"], o["certificate"] = "valid", f.url("/cert/1")
		}
		return o
	}
	challenge := func() map[string]any {
		return map[string]any{"type": "tls-alpn-01", "url": f.url("/chal/1"), "token": "tok3n", "status": f.authz}
	}
	switch r.URL.Path {
	case "/dir":
		reply(200, map[string]string{"newNonce": f.url("/nonce"), "newAccount": f.url("/acct"), "newOrder": f.url("/order"),
			"revokeCert": f.url("/revoke"), "keyChange": f.url("/key-change")})
	case "/nonce":
		w.WriteHeader(200)
	case "/acct":
		f.thumb = f.accountThumbprint(r)
		w.Header().Set("Location", f.url("/acct/1"))
		reply(201, map[string]any{"status": "valid"})
	case "/order":
		if f.failOrders {
			w.Header().Set("Content-Type", "application/problem+json")
			reply(403, map[string]any{"type": "urn:ietf:params:acme:error:unauthorized", "detail": "no orders today"})
			return
		}
		var req struct{ Identifiers []struct{ Value string } }
		f.payload(r, &req)
		f.orders++
		f.host, f.authz, f.certDER = req.Identifiers[0].Value, "pending", nil
		w.Header().Set("Location", f.url("/order/1"))
		reply(201, order())
	case "/order/1":
		w.Header().Set("Location", f.url("/order/1"))
		reply(200, order())
	case "/authz/1":
		reply(200, map[string]any{"status": f.authz, "identifier": map[string]string{"type": "dns", "value": f.host},
			"challenges": []any{challenge()}})
	case "/chal/1":
		// A failed validation invalidates the authorization, so the client
		// stops waiting for it (RFC 8555 section 7.1.6).
		f.authz = "invalid"
		if f.validate("tok3n") {
			f.authz = "valid"
		}
		reply(200, challenge())
	case "/finalize/1":
		var req struct{ CSR string }
		f.payload(r, &req)
		der, _ := base64.RawURLEncoding.DecodeString(req.CSR)
		f.certDER = f.sign(der)
		w.Header().Set("Location", f.url("/order/1"))
		reply(200, order())
	case "/cert/1":
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.certDER}))
		w.Write(f.ca.CertPEM())
	default:
		reply(404, map[string]string{"detail": "not found"})
	}
}

// payload decodes the payload of a JWS request body (signatures are not
// checked: this CA trusts its one client).
func (f *fakeACME) payload(r *http.Request, v any) {
	var jws struct{ Payload string }
	json.NewDecoder(r.Body).Decode(&jws)
	p, _ := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err := json.Unmarshal(p, v); err != nil {
		f.t.Errorf("fake ACME: payload %q: %v", p, err)
	}
}

// accountThumbprint is the RFC 7638 thumbprint of the EC key in the JWS
// protected header of a newAccount request (RFC 8555 section 7.3), which
// the key authorization of a challenge is made with.
func (f *fakeACME) accountThumbprint(r *http.Request) string {
	var jws struct{ Protected string }
	json.NewDecoder(r.Body).Decode(&jws)
	p, _ := base64.RawURLEncoding.DecodeString(jws.Protected)
	var h struct {
		JWK struct{ Kty, Crv, X, Y string }
	}
	if err := json.Unmarshal(p, &h); err != nil || h.JWK.Kty != "EC" {
		f.t.Errorf("fake ACME: newAccount header %q: not an EC key (%v)", p, err)
		return ""
	}
	sum := sha256.Sum256(fmt.Appendf(nil, `{"crv":%q,"kty":"EC","x":%q,"y":%q}`, h.JWK.Crv, h.JWK.X, h.JWK.Y))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validate does what a CA does for TLS-ALPN-01 (RFC 8737 section 3).
func (f *fakeACME) validate(token string) bool {
	conn, err := tls.Dial("tcp", f.target, &tls.Config{ServerName: f.host, NextProtos: []string{"acme-tls/1"}, InsecureSkipVerify: true})
	if err != nil {
		f.t.Errorf("fake ACME: validation connection: %v", err)
		return false
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != "acme-tls/1" {
		f.t.Errorf("fake ACME: negotiated %q", st.NegotiatedProtocol)
		return false
	}
	cert := st.PeerCertificates[0]
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != f.host {
		f.t.Errorf("fake ACME: challenge certificate for %v", cert.DNSNames)
		return false
	}
	want := sha256.Sum256([]byte(token + "." + f.thumb))
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}) {
			var got []byte
			if _, err := asn1.Unmarshal(ext.Value, &got); err == nil && ext.Critical && bytes.Equal(got, want[:]) {
				return true
			}
		}
	}
	f.t.Error("fake ACME: no valid acmeIdentifier extension")
	return false
}

func (f *fakeACME) sign(csrDER []byte) []byte {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		f.t.Errorf("fake ACME: CSR: %v", err)
		return nil
	}
	serial, _ := newSerial()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		DNSNames:     csr.DNSNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(f.validity),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, f.ca.cert, csr.PublicKey, f.ca.key)
	if err != nil {
		f.t.Errorf("fake ACME: signing: %v", err)
	}
	return der
}

// acmeSetup returns a fake CA, a function that starts a federation
// listener (a server start) and the config it uses.
func acmeSetup(t *testing.T) (*fakeACME, func() (addr string), *config.Config) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeACME(t, ca)
	acmeHTTPClient = f.srv.Client()
	t.Cleanup(func() { acmeHTTPClient = nil })
	cfg := testConfig(t)
	cfg.ServerName = "acme.test:8448"
	cfg.ACME.Enabled = true
	cfg.ACME.Email = "admin@acme.test"
	cfg.ACME.DirectoryURL = f.url("/dir")
	cfg.ACME.CacheDir = filepath.Join(cfg.DataDir, "acme")
	start := func() string {
		tc, err := FederationServerConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tc.NextProtos, []string{"h2", "http/1.1", "acme-tls/1"}) || tc.MinVersion != tls.VersionTLS12 {
			t.Fatalf("NextProtos %q, MinVersion %x", tc.NextProtos, tc.MinVersion)
		}
		addr := serve(t, tc)
		f.mu.Lock()
		f.target = addr
		f.mu.Unlock()
		return addr
	}
	return f, start, cfg
}

func federationClient(ca *CA, name string) *tls.Config {
	return &tls.Config{ServerName: name, RootCAs: ca.Pool()}
}

func (f *fakeACME) orderCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.orders
}

func TestACMEObtainCacheRenew(t *testing.T) {
	f, start, cfg := acmeSetup(t)
	addr := start()

	// The first connection waits for the order, then gets a certificate the
	// CA signed for acme.test.
	first, err := dial(addr, federationClient(f.ca, "acme.test"))
	if err != nil {
		t.Fatalf("handshake with ACME certificate: %v", err)
	}
	if first.DNSNames[0] != "acme.test" || f.orderCount() != 1 {
		t.Fatalf("certificate for %v after %d orders", first.DNSNames, f.orderCount())
	}
	if again, err := dial(addr, federationClient(f.ca, "acme.test")); err != nil || !again.Equal(first) || f.orderCount() != 1 {
		t.Fatalf("second connection: %v, orders %d", err, f.orderCount())
	}
	// A client that sends no SNI (it connects by IP address) gets the same
	// certificate.
	noSNI, err := dial(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil || !noSNI.Equal(first) {
		t.Fatalf("connection without SNI: %v", err)
	}
	// Another name is refused, and does not make an order.
	if _, err := dial(addr, federationClient(f.ca, "other.test")); err == nil || f.orderCount() != 1 {
		t.Fatalf("connection for other.test: %v, orders %d", err, f.orderCount())
	}

	// A restart serves the cached certificate without a new order.
	addr = start()
	cached, err := dial(addr, federationClient(f.ca, "acme.test"))
	if err != nil || !cached.Equal(first) || f.orderCount() != 1 {
		t.Fatalf("after restart: %v, orders %d", err, f.orderCount())
	}

	// A cached certificate in the last third of its lifetime (10 of 90
	// days left) is still served while a new one is ordered in the
	// background. The cache entry is autocert's: the key, then the chain.
	tmpl, err := leafTemplate([]string{"acme.test"}, time.Now().Add(10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore = time.Now().Add(-80 * 24 * time.Hour)
	certPEM, keyPEM, err := issue(tmpl, f.ca.cert, f.ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.ACME.CacheDir, "acme.test"), append(keyPEM, certPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	addr = start()
	due, err := dial(addr, federationClient(f.ca, "acme.test"))
	if err != nil {
		t.Fatal(err)
	}
	if due.SerialNumber.Cmp(tmpl.SerialNumber) != 0 {
		t.Error("the certificate due for renewal was not served meanwhile")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		renewed, err := dial(addr, federationClient(f.ca, "acme.test"))
		if err != nil {
			t.Fatal(err)
		}
		if renewed.SerialNumber.Cmp(tmpl.SerialNumber) != 0 {
			if time.Until(renewed.NotAfter) < 80*24*time.Hour || f.orderCount() != 2 {
				t.Errorf("renewed certificate expires %v after %d orders", renewed.NotAfter, f.orderCount())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no renewal within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With delegation, the certificate is for the host of well_known_server,
// which is the name other servers check, and not for the server name.
func TestACMEDelegated(t *testing.T) {
	f, start, cfg := acmeSetup(t)
	cfg.WellKnownServer = "matrix.acme.test:443"
	addr := start()
	cert, err := dial(addr, federationClient(f.ca, "matrix.acme.test"))
	if err != nil {
		t.Fatalf("handshake for the delegated host: %v", err)
	}
	if !slices.Equal(cert.DNSNames, []string{"matrix.acme.test"}) {
		t.Errorf("certificate for %v", cert.DNSNames)
	}
	if _, err := dial(addr, federationClient(f.ca, "acme.test")); err == nil || f.orderCount() != 1 {
		t.Errorf("connection for the server name: %v, orders %d", err, f.orderCount())
	}
}

// A CA refusing the order fails the handshake with an error naming the
// host, the CA and its reason, and is not asked again within a minute.
func TestACMEFailure(t *testing.T) {
	f, _, cfg := acmeSetup(t)
	f.mu.Lock()
	f.failOrders = true
	f.mu.Unlock()
	tc, err := FederationServerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "acme.test", SupportedProtos: []string{"h2", "http/1.1"},
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	_, err = tc.GetCertificate(hello)
	want := "ACME certificate for acme.test from " + f.url("/dir") + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "no orders today") {
		t.Fatalf("error = %v", err)
	}
	f.mu.Lock()
	requests := f.nonce
	f.mu.Unlock()
	if _, err := tc.GetCertificate(hello); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("second attempt: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nonce != requests {
		t.Error("the CA was asked again right after a failure")
	}
	// A validation connection for which no challenge is pending is refused.
	if _, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: "acme.test", SupportedProtos: []string{"acme-tls/1"}}); err == nil {
		t.Error("challenge certificate served with no challenge pending")
	}
}

// A cache directory that cannot be created is a startup error.
func TestACMEBadCacheDir(t *testing.T) {
	cfg := testConfig(t)
	cfg.ServerName = "acme.test"
	cfg.ACME.Enabled = true
	file := filepath.Join(cfg.DataDir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.ACME.CacheDir = filepath.Join(file, "acme")
	if _, err := FederationServerConfig(cfg); err == nil || !strings.Contains(err.Error(), "acme.cache_dir "+cfg.ACME.CacheDir+": not a directory") {
		t.Errorf("error = %v", err)
	}
}
