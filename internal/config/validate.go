package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The checks below return "<what is wrong>: <how to fix it>"; the caller
// prefixes where the value came from (file and line, flag or variable).

// ValidServerName checks s against the grammar of the spec's appendices,
// "Server Name": hostname [ ":" port ], the hostname being an IPv4 literal,
// a bracketed IPv6 literal or a DNS name. Like Synapse, DNS names must be
// dot-separated non-empty labels of letters, digits and hyphens.
func ValidServerName(s string) error {
	host, port, hasPort, err := splitServerName(s)
	if err != nil {
		return err
	}
	if hasPort {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("port %q is not a number of at most 5 digits", port)
		}
		if n, _ := strconv.Atoi(port); n < 1 || n > 65535 {
			return fmt.Errorf("port %s is outside 1-65535", port)
		}
	}
	if strings.HasPrefix(host, "[") {
		ip := net.ParseIP(host[1 : len(host)-1])
		if ip == nil || !strings.Contains(host, ":") {
			return fmt.Errorf("%s is not an IPv6 address", host)
		}
		return nil
	}
	if host == "" {
		return errors.New("the hostname is empty")
	}
	if len(host) > 255 {
		return errors.New("the hostname is longer than 255 characters")
	}
	if strings.Trim(host, "0123456789.") == "" {
		// Digits and dots only: the grammar would accept it as a DNS name,
		// but it is surely meant as an IPv4 literal, so hold it to that.
		if ip := net.ParseIP(host); ip == nil || ip.To4() == nil {
			return fmt.Errorf("%s is not an IPv4 address", host)
		}
		return nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return fmt.Errorf("%s has an empty label (two dots in a row, or a dot at either end)", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%s contains %q (only letters, digits, '-' and '.' are allowed)", host, r)
			}
		}
	}
	return nil
}

// splitServerName splits hostname and port; hasPort says whether there
// was a ':' after the hostname.
func splitServerName(s string) (host, port string, hasPort bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, errors.New("the IPv6 literal has no closing ']'")
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", false, nil
		}
		if rest[0] != ':' {
			return "", "", false, fmt.Errorf("unexpected %q after the IPv6 literal", rest)
		}
		return host, rest[1:], true, nil
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if strings.Count(s, ":") > 1 {
			return "", "", false, errors.New("an IPv6 address must be in brackets, e.g. [::1]:8448")
		}
		return s[:i], s[i+1:], true, nil
	}
	return s, "", false, nil
}

func checkServerName(c *Config) error {
	if err := ValidServerName(c.ServerName); err != nil {
		return fmt.Errorf("%q is not a valid server name (%v): use hostname[:port], e.g. example.org or 127.0.0.1:8448", c.ServerName, err)
	}
	return nil
}

func checkWellKnownServer(c *Config) error {
	if c.WellKnownServer == "" {
		return nil
	}
	if err := ValidServerName(c.WellKnownServer); err != nil {
		return fmt.Errorf("%q is not a valid host[:port] (%v): use e.g. matrix.example.org:443", c.WellKnownServer, err)
	}
	return nil
}

func checkTrustedKeyServers(c *Config) error {
	for _, s := range strings.Split(c.TrustedKeyServers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if err := ValidServerName(s); err != nil {
			return fmt.Errorf("%q is not a valid server name (%v): list server names separated by commas, e.g. matrix.org,example.com:8448", s, err)
		}
	}
	return nil
}

func checkNotEmpty(get func(*Config) string) func(*Config) error {
	return func(c *Config) error {
		if strings.TrimSpace(get(c)) == "" {
			return errors.New("is empty: set a directory path, e.g. ./myelin-data")
		}
		return nil
	}
}

// checkListen accepts host:port with a numeric port; port 0 picks a free
// port (useful in tests), an empty host listens on every address.
func checkListen(get func(*Config) string) func(*Config) error {
	return func(c *Config) error {
		addr := get(c)
		const fix = "use host:port or :port, e.g. :8008 or 127.0.0.1:8008"
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("%q is not a listen address: %s", addr, fix)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%q has no numeric port in 0-65535: %s", addr, fix)
		}
		return nil
	}
}

func checkDatabase(c *Config) error {
	const fix = "use sqlite:PATH or postgres://user:password@host:5432/dbname"
	d := c.Database
	if path, ok := strings.CutPrefix(d, "sqlite:"); ok {
		if path == "" {
			return fmt.Errorf("%q has no file path: %s", d, fix)
		}
		return nil
	}
	u, err := url.Parse(d)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("%q is not a supported database: %s", d, fix)
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return fmt.Errorf("%q has no host: %s", d, fix)
	}
	return nil
}

func checkNATS(c *Config) error {
	if c.NATS == "" {
		return nil
	}
	for _, s := range strings.Split(c.NATS, ",") {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%q is not a NATS URL: use nats://host:4222 (comma-separated for a cluster), or empty for the embedded server", s)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%q has scheme %q: use nats://, tls://, ws:// or wss://", s, u.Scheme)
		}
	}
	return nil
}

func checkHTTPURL(what, s, example string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL: use the %s, e.g. %s", s, what, example)
	}
	return nil
}

func checkACMEDirectory(c *Config) error {
	if c.ACME.DirectoryURL == "" {
		return nil
	}
	return checkHTTPURL("ACME directory URL", c.ACME.DirectoryURL, "https://acme-staging-v02.api.letsencrypt.org/directory")
}

func checkWellKnownClient(c *Config) error {
	if c.WellKnownClientBaseURL == "" {
		return nil
	}
	return checkHTTPURL("public URL of the client API", c.WellKnownClientBaseURL, "https://matrix.example.org")
}

// minBodyBytes is the event size limit of the spec; a smaller body limit
// would refuse valid events.
const minBodyBytes = 65536

func checkMaxBody(c *Config) error {
	if c.MaxRequestBodyBytes < minBodyBytes {
		return fmt.Errorf("%d is too small: use at least %d (the event size limit), e.g. 1048576", c.MaxRequestBodyBytes, minBodyBytes)
	}
	return nil
}

func checkOneOf(get func(*Config) string, allowed ...string) func(*Config) error {
	return func(c *Config) error {
		v := get(c)
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not allowed: use one of %s", v, strings.Join(allowed, ", "))
	}
}

// bcrypt's limits (golang.org/x/crypto/bcrypt MinCost and MaxCost).
const minBcryptCost, maxBcryptCost = 4, 31

func checkBcryptCost(c *Config) error {
	if c.BcryptCost < minBcryptCost || c.BcryptCost > maxBcryptCost {
		return fmt.Errorf("%d is outside %d-%d: use e.g. 12", c.BcryptCost, minBcryptCost, maxBcryptCost)
	}
	return nil
}

func checkShutdownTimeout(c *Config) error {
	d, err := time.ParseDuration(c.ShutdownTimeout)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration: use a number with a unit, e.g. 10s or 1m30s", c.ShutdownTimeout)
	}
	return nil
}

// checkRate accepts a rate limit: 0 (off) up to a million a minute.
func checkRate(get func(*Config) int) func(*Config) error {
	return func(c *Config) error {
		if v := get(c); v < 0 || v > 1_000_000 {
			return fmt.Errorf("%d is outside 0-1000000: use e.g. 10, or 0 for no limit", v)
		}
		return nil
	}
}

// checkBurst accepts a burst size: at least 1.
func checkBurst(get func(*Config) int) func(*Config) error {
	return func(c *Config) error {
		if v := get(c); v < 1 || v > 1_000_000 {
			return fmt.Errorf("%d is outside 1-1000000: use e.g. 10", v)
		}
		return nil
	}
}

func checkTokenLifetime(c *Config) error {
	d, err := time.ParseDuration(c.RefreshableAccessTokenLifetime)
	if err != nil || d < time.Second {
		return fmt.Errorf("%q is not a duration of at least 1s: use a number with a unit, e.g. 5m or 1h", c.RefreshableAccessTokenLifetime)
	}
	return nil
}

// crossCheck validates settings that depend on each other. src names where
// a setting came from, for the error message.
func crossCheck(c *Config, src func(key string) string) error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		if c.TLSCert != "" {
			return fmt.Errorf("%s: tls_cert is set but tls_key is not: set tls_key to the certificate's private key file", src("tls_cert"))
		}
		return fmt.Errorf("%s: tls_key is set but tls_cert is not: set tls_cert to the certificate file", src("tls_key"))
	}
	if c.ACME.Enabled {
		if c.TLSCert != "" {
			return fmt.Errorf("%s: acme.enabled is true but tls_cert is also set: use one of the two", src("acme.enabled"))
		}
		// The certificate is for the host other servers connect to: the
		// delegated one if /.well-known/matrix/server delegates.
		key, name := "server_name", c.ServerName
		if c.WellKnownServer != "" {
			key, name = "well_known_server", c.WellKnownServer
		}
		host, _, _, _ := splitServerName(name)
		if strings.HasPrefix(host, "[") || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
			return fmt.Errorf("%s: acme.enabled needs a public DNS name in %s, not %q: set tls_cert/tls_key or disable ACME", src("acme.enabled"), key, name)
		}
	}
	return nil
}
