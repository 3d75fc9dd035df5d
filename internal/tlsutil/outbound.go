package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/myelin-chat/myelin/internal/config"
)

// OutboundConfig returns the TLS configuration for requests to other
// servers: the system's roots (x509.SystemCertPool, which honours
// SSL_CERT_FILE and SSL_CERT_DIR) plus the certificates in
// cfg.FederationTrustCA, and no verification at all only when
// cfg.FederationInsecureSkipVerify is set.
func OutboundConfig(cfg *config.Config) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		// No system roots (a minimal container): trust only the configured CA.
		pool = x509.NewCertPool()
	}
	if cfg.FederationTrustCA != "" {
		data, err := os.ReadFile(cfg.FederationTrustCA)
		if err != nil {
			return nil, fmt.Errorf("federation_trust_ca %s: %v: check the path and that the server's user can read it", cfg.FederationTrustCA, unwrapPath(err))
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("federation_trust_ca %s holds no PEM certificate: give the CA certificate in PEM (-----BEGIN CERTIFICATE-----)", cfg.FederationTrustCA)
		}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            pool,
		InsecureSkipVerify: cfg.FederationInsecureSkipVerify,
	}, nil
}
