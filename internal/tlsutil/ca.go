package tlsutil

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CA is a private certificate authority, for tests and test clusters: it
// issues server certificates that servers configured with its certificate
// (federation_trust_ca) accept.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// NewTestCA makes a CA with a fresh ECDSA P-256 key, valid for a year.
func NewTestCA() (*CA, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Myelin test CA", Organization: []string{"Myelin tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs server certificates only
	}
	certPEM, keyPEM, err := issue(t, nil, nil)
	if err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, "test CA", "test CA")
}

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool returns a pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue returns a certificate valid for the given hosts (DNS names or IP
// literals such as 127.0.0.1; a port is ignored, so server names work) and
// its private key, both PEM. It lasts as long as the CA.
func (ca *CA) Issue(hosts ...string) (certPEM, keyPEM []byte, err error) {
	t, err := leafTemplate(hosts, ca.cert.NotAfter)
	if err != nil {
		return nil, nil, err
	}
	return issue(t, ca.cert, ca.key)
}

// IssueTLS is Issue as a tls.Certificate, for a tls.Config.
func (ca *CA) IssueTLS(hosts ...string) (tls.Certificate, error) {
	certPEM, keyPEM, err := ca.Issue(hosts...)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// WriteCA writes the CA certificate and key to dir/ca.crt and dir/ca.key.
func (ca *CA) WriteCA(dir string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, ca.certPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, ca.keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// IssueFiles issues a certificate for hosts and writes it to dir/tls.crt
// and dir/tls.key, the files a server reads with tls_cert and tls_key.
func (ca *CA) IssueFiles(dir string, hosts ...string) (certFile, keyFile string, err error) {
	certPEM, keyPEM, err := ca.Issue(hosts...)
	if err != nil {
		return "", "", err
	}
	if err := writePair(dir, certPEM, keyPEM); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), nil
}

// GenerateSigned implements `myelin generate-tls`: it issues a server
// certificate for host (a DNS name or an IP address, a port is ignored)
// signed by the CA in caCertFile/caKeyFile, and writes outDir/tls.crt and
// outDir/tls.key. The CA key may be RSA (PKCS#1 or PKCS#8), ECDSA (SEC1 or
// PKCS#8) or Ed25519 (PKCS#8), in PEM. The certificate is valid for two
// years, or until the CA expires if sooner.
func GenerateSigned(caCertFile, caKeyFile, host, outDir string) error {
	certPEM, err := os.ReadFile(caCertFile)
	if err != nil {
		return fmt.Errorf("CA certificate %s: %v: check the --ca-cert path", caCertFile, unwrapPath(err))
	}
	keyPEM, err := os.ReadFile(caKeyFile)
	if err != nil {
		return fmt.Errorf("CA key %s: %v: check the --ca-key path", caKeyFile, unwrapPath(err))
	}
	ca, err := parseCA(certPEM, keyPEM, caCertFile, caKeyFile)
	if err != nil {
		return err
	}
	notAfter := time.Now().AddDate(2, 0, 0)
	if ca.cert.NotAfter.Before(notAfter) {
		notAfter = ca.cert.NotAfter
	}
	if time.Now().After(notAfter) {
		return fmt.Errorf("CA certificate %s expired on %s: renew the CA first", caCertFile, notAfter.Format(time.DateOnly))
	}
	t, err := leafTemplate([]string{host}, notAfter)
	if err != nil {
		return err
	}
	leafPEM, leafKeyPEM, err := issue(t, ca.cert, ca.key)
	if err != nil {
		return err
	}
	// An intermediate CA's certificate goes into the chain so that servers
	// trusting only the root can verify the leaf.
	if !bytes.Equal(ca.cert.RawIssuer, ca.cert.RawSubject) {
		leafPEM = append(leafPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	}
	return writePair(outDir, leafPEM, leafKeyPEM)
}

// parseCA reads a CA certificate and its private key from PEM and checks
// they belong together and can sign certificates.
func parseCA(certPEM, keyPEM []byte, certName, keyName string) (*CA, error) {
	var cert *x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("CA certificate %s: no PEM CERTIFICATE block: give the CA certificate in PEM (-----BEGIN CERTIFICATE-----)", certName)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("CA certificate %s: %v: give a valid X.509 certificate in PEM", certName, err)
			}
			cert = c
			break
		}
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %s is not a CA (basicConstraints CA:TRUE missing): give the certificate of the CA, not of a server", certName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("CA certificate %s may not sign certificates (keyCertSign usage missing): use a CA certificate with keyUsage keyCertSign", certName)
	}
	key, err := parsePrivateKey(keyPEM, keyName)
	if err != nil {
		return nil, err
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not belong to CA certificate %s: give the key the CA certificate was made with", keyName, certName)
	}
	return &CA{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// parsePrivateKey reads the first private key in PEM: PKCS#1 RSA, SEC1
// ECDSA or PKCS#8 of RSA, ECDSA or Ed25519. Other blocks (such as the
// "EC PARAMETERS" that openssl ecparam writes first) are skipped.
func parsePrivateKey(data []byte, name string) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("CA key %s: no PEM private key block: give the key in PEM (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)", name)
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED" {
			return nil, fmt.Errorf("CA key %s is encrypted: decrypt it first, e.g. openssl pkey -in %s -out ca-plain.key", name, name)
		}
		var key any
		var err error
		switch b.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("CA key %s: %s block: %v: give an unencrypted RSA, ECDSA or Ed25519 key in PEM", name, b.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("CA key %s: unsupported key type %T: use an RSA, ECDSA or Ed25519 key", name, key)
		}
	}
}
