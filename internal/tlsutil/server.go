// Package tlsutil builds the TLS configurations of federation: the server
// side of the federation listener (a configured certificate, one from an
// ACME CA, or a self-signed one), the client side of outbound federation
// requests (system roots plus an optional extra CA), and certificates signed
// by a private CA for test clusters (`myelin generate-tls`) and for tests.
//
// Server-server API, "Server discovery" and "TLS": a server's federation
// certificate must be valid for its server name (or for the host it
// delegates to), signed by a CA the other servers trust.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
)

// FederationServerConfig returns the TLS configuration of the federation
// listener: the certificate in cfg.TLSCert/TLSKey (re-read when the files
// change, so a renewal needs no restart); else, when cfg.ACME.Enabled, one
// obtained from the ACME CA by golang.org/x/crypto/acme/autocert; else a self-signed certificate created in
// DataDir on first run (tls.crt, tls.key) and reused afterwards. Files
// written by `myelin generate-tls --out DATA_DIR` take that last place.
func FederationServerConfig(cfg *config.Config) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	switch {
	case cfg.TLSCert != "":
		r, err := newCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		tc.GetCertificate = r.getCertificate
	case cfg.ACME.Enabled:
		return acmeConfig(cfg)
	default:
		cert, err := selfSigned(cfg)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// certReloader serves a certificate from files and loads them again when
// their modification time changes (certbot and similar renew in place).
type certReloader struct {
	certFile, keyFile string

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	lastCheck       time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	cm, km, err := modTimes(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert %s / tls_key %s: %v: give a PEM certificate chain and its PEM private key", r.certFile, r.keyFile, oneLine(err))
	}
	r.cert, r.certMod, r.keyMod = &cert, cm, km
	return nil
}

func modTimes(certFile, keyFile string) (cm, km time.Time, err error) {
	for _, f := range []struct {
		name, path string
		mod        *time.Time
	}{{"tls_cert", certFile, &cm}, {"tls_key", keyFile, &km}} {
		st, err := os.Stat(f.path)
		if err != nil {
			return cm, km, fmt.Errorf("%s %s: %v: check the path and that the server's user can read it", f.name, f.path, unwrapPath(err))
		}
		*f.mod = st.ModTime()
	}
	return cm, km, nil
}

// reloadInterval is how often the certificate files are looked at.
var reloadInterval = time.Second

// getCertificate looks at the files at most once per reloadInterval. A
// failed reload (say, the key not yet written after the certificate) keeps
// the previous certificate and is retried at the next check.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.lastCheck) >= reloadInterval {
		r.lastCheck = now
		if cm, km, err := modTimes(r.certFile, r.keyFile); err == nil && (!cm.Equal(r.certMod) || !km.Equal(r.keyMod)) {
			_ = r.load()
		}
	}
	return r.cert, nil
}

// selfSigned loads DataDir/tls.crt and tls.key, creating them when missing
// or when the certificate has expired.
func selfSigned(cfg *config.Config) (tls.Certificate, error) {
	certFile := filepath.Join(cfg.DataDir, "tls.crt")
	keyFile := filepath.Join(cfg.DataDir, "tls.key")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		leaf := cert.Leaf
		if leaf == nil {
			leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
		if leaf != nil && time.Now().Before(leaf.NotAfter) {
			return cert, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("federation certificate %s / %s: %v: delete both files to generate a new self-signed certificate", certFile, keyFile, oneLine(err))
	}
	host := hostOf(cfg.ServerName)
	certPEM, keyPEM, err := selfSignedPEM(host)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writePair(cfg.DataDir, certPEM, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// hostOf strips the port and the IPv6 brackets from a server name.
func hostOf(serverName string) string {
	if h, _, err := net.SplitHostPort(serverName); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(serverName, "["), "]")
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
