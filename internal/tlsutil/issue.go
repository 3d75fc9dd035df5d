package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// leafTemplate is a server certificate for hosts (DNS names or IP
// literals; ports and IPv6 brackets are stripped, so a server name such as
// "127.0.0.1:38448" can be given as is).
func leafTemplate(hosts []string, notAfter time.Time) (*x509.Certificate, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no host given: name the DNS name or IP address the certificate is for")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostOf(hosts[0])},
		NotBefore:             time.Now().Add(-time.Hour), // tolerate clock skew
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = hostOf(h)
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else if validDNSName(h) {
			t.DNSNames = append(t.DNSNames, h)
		} else {
			return nil, fmt.Errorf("host %q is neither a DNS name nor an IP address: give e.g. matrix.example.org or 127.0.0.1", h)
		}
	}
	return t, nil
}

// newSerial returns a random 127-bit serial number, as CAs must use
// unpredictable serials.
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// issue makes a fresh ECDSA P-256 key and a certificate from template,
// signed by parent/parentKey (or self-signed when parent is nil), both PEM.
func issue(template, parent *x509.Certificate, parentKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot sign the certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// selfSignedPEM makes a self-signed certificate for host, valid ten years:
// nobody renews a self-signed certificate, and remote servers only accept
// it with verification turned off anyway.
func selfSignedPEM(host string) (certPEM, keyPEM []byte, err error) {
	hosts := []string{host}
	if host == "localhost" {
		hosts = append(hosts, "127.0.0.1", "::1")
	}
	t, err := leafTemplate(hosts, time.Now().AddDate(10, 0, 0))
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed federation certificate: %v", err)
	}
	return issue(t, nil, nil)
}

// writePair writes dir/tls.crt (mode 0644) and dir/tls.key (mode 0600).
func writePair(dir string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %v: choose a writable directory", dir, unwrapPath(err))
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"tls.key", keyPEM, 0o600}, {"tls.crt", certPEM, 0o644}} {
		path := filepath.Join(dir, f.name)
		err := os.WriteFile(path, f.data, f.mode)
		if err == nil {
			err = os.Chmod(path, f.mode) // WriteFile keeps the mode of an existing file
		}
		if err != nil {
			return fmt.Errorf("cannot write %s: %v: check that %s is writable", path, unwrapPath(err), dir)
		}
	}
	return nil
}
