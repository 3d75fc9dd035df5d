package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caTemplate is a root CA certificate template.
func caTemplate(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	serial, err := newSerial()
	if err != nil {
		t.Fatal(err)
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// writeCA writes a CA certificate made from template, signed by parent
// (self-signed if nil), and the key PEM blocks to dir; it returns the paths
// and the certificate.
func writeCA(t *testing.T, dir string, template, parent *x509.Certificate, parentKey crypto.Signer, key crypto.Signer, keyBlocks ...*pem.Block) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	var keyPEM []byte
	for _, b := range keyBlocks {
		keyPEM = append(keyPEM, pem.EncodeToMemory(b)...)
	}
	os.WriteFile(keyFile, keyPEM, 0o600)
	return certFile, keyFile, cert
}

func pkcs8(t *testing.T, key any) *pem.Block {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// checkIssued verifies dir/tls.crt against roots for host and that
// dir/tls.key is its key.
func checkIssued(t *testing.T, dir string, roots *x509.CertPool, host string) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		t.Errorf("leaf does not verify for %s: %v", host, err)
	}
	st, _ := os.Stat(filepath.Join(dir, "tls.key"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %v", st.Mode().Perm())
	}
}

func TestGenerateSignedKeyTypes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name   string
		key    crypto.Signer
		blocks []*pem.Block
	}{
		{"RSA PKCS#1", rsaKey, []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}}},
		{"RSA PKCS#8", rsaKey, []*pem.Block{pkcs8(t, rsaKey)}},
		// openssl ecparam -genkey writes the curve parameters first.
		{"ECDSA SEC1", ecKey, []*pem.Block{{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}, {Type: "EC PRIVATE KEY", Bytes: ecDER}}},
		{"ECDSA PKCS#8", ecKey, []*pem.Block{pkcs8(t, ecKey)}},
		{"Ed25519 PKCS#8", edKey, []*pem.Block{pkcs8(t, edKey)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile, caCert := writeCA(t, dir, caTemplate(t, tc.name), nil, nil, tc.key, tc.blocks...)
			roots := x509.NewCertPool()
			roots.AddCert(caCert)
			for _, host := range []string{"matrix.example.org", "10.1.2.3", "127.0.0.1:8448"} {
				out := filepath.Join(dir, "out", host)
				if err := GenerateSigned(certFile, keyFile, host, out); err != nil {
					t.Fatalf("%s: %v", host, err)
				}
				checkIssued(t, out, roots, hostOf(host))
			}
		})
	}
}

// A certificate from an intermediate CA carries the intermediate, so that
// servers trusting the root verify it.
func TestGenerateSignedIntermediate(t *testing.T) {
	dir := t.TempDir()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, _, root := writeCA(t, filepath.Join(dir), caTemplate(t, "root"), nil, nil, rootKey, pkcs8(t, rootKey))
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interDir := filepath.Join(dir, "inter")
	os.Mkdir(interDir, 0o700)
	certFile, keyFile, _ := writeCA(t, interDir, caTemplate(t, "intermediate"), root, rootKey, interKey, pkcs8(t, interKey))
	out := filepath.Join(dir, "out")
	if err := GenerateSigned(certFile, keyFile, "m.example", out); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	checkIssued(t, out, roots, "m.example")
}

func TestGenerateSignedErrors(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certFile, keyFile, _ := writeCA(t, dir, caTemplate(t, "ca"), nil, nil, key, pkcs8(t, key))

	write := func(name string, blocks ...*pem.Block) string {
		var data []byte
		for _, b := range blocks {
			data = append(data, pem.EncodeToMemory(b)...)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	notCADir := filepath.Join(dir, "notca")
	os.Mkdir(notCADir, 0o700)
	leafTmpl := caTemplate(t, "leaf")
	leafTmpl.IsCA, leafTmpl.KeyUsage = false, x509.KeyUsageDigitalSignature
	notCACert, notCAKey, _ := writeCA(t, notCADir, leafTmpl, nil, nil, key, pkcs8(t, key))

	cases := []struct {
		name, cert, key, host, want string
	}{
		{"missing cert", filepath.Join(dir, "none.crt"), keyFile, "h.example", "check the --ca-cert path"},
		{"missing key", certFile, filepath.Join(dir, "none.key"), "h.example", "check the --ca-key path"},
		{"cert not PEM", write("junk.crt"), keyFile, "h.example", "no PEM CERTIFICATE block"},
		{"key not PEM", certFile, write("junk.key"), "h.example", "no PEM private key block"},
		{"wrong key", certFile, write("other.key", pkcs8(t, other)), "h.example", "does not belong to CA certificate"},
		{"encrypted key", certFile, write("enc.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "h.example", "is encrypted: decrypt it first"},
		{"corrupt key", certFile, write("bad.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), "h.example", "EC PRIVATE KEY block"},
		{"not a CA", notCACert, notCAKey, "h.example", "is not a CA"},
		{"bad host", certFile, keyFile, "exa mple", "neither a DNS name nor an IP address"},
		{"empty host", certFile, keyFile, "", "neither a DNS name nor an IP address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := GenerateSigned(tc.cert, tc.key, tc.host, filepath.Join(dir, "out"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %v, want one line containing %q", err, tc.want)
			}
		})
	}
}
