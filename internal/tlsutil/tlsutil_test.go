package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
)

func testConfig(t *testing.T) *config.Config {
	c := config.Default()
	c.DataDir = t.TempDir()
	return c
}

func leafOf(t *testing.T, c *tls.Certificate) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestSelfSignedCreatedAndReused(t *testing.T) {
	cfg := testConfig(t)
	cfg.ServerName = "localhost:8448"
	tc1, err := FederationServerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, &tc1.Certificates[0])
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	st, err := os.Stat(filepath.Join(cfg.DataDir, "tls.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key: %v %v", st.Mode(), err)
	}
	tc2, err := FederationServerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tc1.Certificates[0].Certificate[0], tc2.Certificates[0].Certificate[0]) {
		t.Error("the self-signed certificate was not reused")
	}
	if tc1.MinVersion != tls.VersionTLS12 {
		t.Error("TLS versions below 1.2 allowed")
	}
}

func TestSelfSignedForIP(t *testing.T) {
	cfg := testConfig(t)
	cfg.ServerName = "[::1]:8448"
	tc, err := FederationServerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := leafOf(t, &tc.Certificates[0]).VerifyHostname("::1"); err != nil {
		t.Error(err)
	}
}

func TestSelfSignedExpiredIsReplaced(t *testing.T) {
	cfg := testConfig(t)
	tmpl, err := leafTemplate([]string{"localhost"}, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore = time.Now().Add(-2 * time.Hour)
	certPEM, keyPEM, err := issue(tmpl, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePair(cfg.DataDir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	tc, err := FederationServerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := leafOf(t, &tc.Certificates[0]); !time.Now().Before(leaf.NotAfter) {
		t.Error("expired certificate kept")
	}
}

func TestSelfSignedMalformed(t *testing.T) {
	cfg := testConfig(t)
	os.WriteFile(filepath.Join(cfg.DataDir, "tls.crt"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(cfg.DataDir, "tls.key"), []byte("junk"), 0o600)
	_, err := FederationServerConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "tls.crt") || !strings.Contains(err.Error(), "delete both files") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error = %v", err)
	}
}

// serve runs a TLS server with tc on 127.0.0.1 that accepts connections and
// completes handshakes; it returns the address.
func serve(t *testing.T, tc *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, tc *tls.Config) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// A server with a configured certificate from the test CA, and clients
// with and without that CA trusted.
func TestConfiguredCertAndOutbound(t *testing.T) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := ca.WriteCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	if cfg.TLSCert, cfg.TLSKey, err = ca.IssueFiles(filepath.Join(dir, "srv"), "127.0.0.1:8448"); err != nil {
		t.Fatal(err)
	}
	stc, err := FederationServerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, stc)

	plain, err := OutboundConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, plain); err == nil {
		t.Error("an unknown CA was trusted")
	}

	cfg.FederationTrustCA = caFile
	trusting, err := OutboundConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if trusting.InsecureSkipVerify {
		t.Error("InsecureSkipVerify set without the option")
	}
	first, err := dial(addr, trusting)
	if err != nil {
		t.Fatalf("trusting the CA: %v", err)
	}

	insecureCfg := config.Default()
	insecureCfg.FederationInsecureSkipVerify = true
	insecure, err := OutboundConfig(insecureCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, insecure); err != nil {
		t.Errorf("insecure: %v", err)
	}

	// A renewed certificate in the same files is served without a restart.
	defer func(d time.Duration) { reloadInterval = d }(reloadInterval)
	reloadInterval = 0
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	if _, _, err := ca.IssueFiles(filepath.Join(dir, "srv"), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	second, err := dial(addr, trusting)
	if err != nil {
		t.Fatal(err)
	}
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Error("the renewed certificate was not picked up")
	}
}

func TestConfiguredCertErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = filepath.Join(cfg.DataDir, "missing.crt"), filepath.Join(cfg.DataDir, "missing.key")
	_, err := FederationServerConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "tls_cert "+cfg.TLSCert) {
		t.Errorf("missing files: %v", err)
	}
	os.WriteFile(cfg.TLSCert, []byte("not pem"), 0o644)
	os.WriteFile(cfg.TLSKey, []byte("not pem"), 0o600)
	_, err = FederationServerConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "give a PEM certificate chain") || strings.Contains(err.Error(), "\n") {
		t.Errorf("bad files: %v", err)
	}
}

func TestOutboundErrors(t *testing.T) {
	cfg := config.Default()
	cfg.FederationTrustCA = filepath.Join(t.TempDir(), "nope.pem")
	if _, err := OutboundConfig(cfg); err == nil || !strings.Contains(err.Error(), "federation_trust_ca "+cfg.FederationTrustCA) {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(cfg.FederationTrustCA, []byte("hello"), 0o644)
	if _, err := OutboundConfig(cfg); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("no PEM: %v", err)
	}
}

func TestTestCAIssue(t *testing.T) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("a.example", "127.0.0.1:38448", "[::1]")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CertPEM is not PEM")
	}
	for _, host := range []string{"a.example", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "b.example"}); err == nil {
		t.Error("valid for a host it was not issued for")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "a.example"}); err != nil {
		t.Errorf("Pool: %v", err)
	}
	if _, _, err := ca.Issue("bad host!"); err == nil {
		t.Error("bad host accepted")
	}
	if _, _, err := ca.Issue(); err == nil {
		t.Error("no host accepted")
	}
	if _, err := ca.IssueTLS("a.example"); err != nil {
		t.Error(err)
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"example.org": "example.org", "example.org:8448": "example.org", "1.2.3.4:5": "1.2.3.4",
		"[::1]": "::1", "[::1]:8448": "::1",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
	if net.ParseIP(hostOf("[2001:db8::1]:1")) == nil {
		t.Error("IPv6 server name not reduced to an IP")
	}
}
