package fedclient

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/federation/internal/lru"
)

// discovery resolves server names and connects to them.
type discovery struct {
	resolver        Resolver
	tls             *tls.Config // outbound roots; ServerName is set per connection
	logger          *slog.Logger
	now             func() time.Time
	userAgent       string
	wk              wellKnownCache
	wellKnownClient *http.Client
	// wellKnownPort is 443, as the spec says; tests, which cannot listen
	// there, change it.
	wellKnownPort int
	// dialer makes every connection, federation requests and /.well-known
	// alike; its Control refuses the addresses the IPFilter refuses.
	dialer net.Dialer
}

func newDiscovery(resolver Resolver, tc *tls.Config, filter *IPFilter, logger *slog.Logger, now func() time.Time, userAgent string) *discovery {
	d := &discovery{
		resolver:      resolver,
		tls:           tc,
		logger:        logger,
		now:           now,
		userAgent:     userAgent,
		wellKnownPort: 443,
		dialer:        net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Control: filter.Control},
	}
	d.wk.entries = lru.New[string, wellKnownEntry](wellKnownCacheSize)
	d.wellKnownClient = d.newWellKnownClient()
	return d
}

const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	// maxAddrsPerHost bounds the addresses tried for one host name.
	maxAddrsPerHost = 6
)

// dialPlain connects to addr ("host:port"), resolving the host through the
// discovery's resolver and trying its addresses in turn.
func (d *discovery) dialPlain(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portText, err)
	}
	return d.dialTarget(ctx, Target{Host: host, Port: port})
}

// dialTarget connects over TCP to t, resolving a host name to its
// addresses (AAAA and A records, CNAMEs followed) and trying each. The
// dialer refuses the addresses of the IPFilter's denylist.
func (d *discovery) dialTarget(ctx context.Context, t Target) (net.Conn, error) {
	var ips []string
	if isIP(t.Host) {
		ips = []string{t.Host}
	} else {
		addrs, err := d.resolver.LookupIPAddr(ctx, t.Host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", t.Host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.String())
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("resolving %s: no addresses", t.Host)
		}
		ips = ips[:min(len(ips), maxAddrsPerHost)]
	}
	var errs []error
	for _, ip := range ips {
		conn, err := d.dialer.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(t.Port)))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// connect resolves serverName and opens a TLS connection to the first of
// its targets that answers, with the certificate checked for the
// resolution's TLS name.
func (d *discovery) connect(ctx context.Context, serverName string) (*tls.Conn, error) {
	res, _, err := d.resolve(ctx, serverName)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range res.Targets {
		conn, err := d.dialTarget(ctx, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Addr(), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		tc := d.tls.Clone()
		// A name that is an IP address is checked against the
		// certificate's IP addresses, and crypto/tls sends no SNI for it,
		// as the spec asks.
		tc.ServerName = res.TLSName
		tc.NextProtos = []string{"h2", "http/1.1"}
		tlsConn := tls.Client(conn, tc)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err = tlsConn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			errs = append(errs, fmt.Errorf("%s: TLS: %w", t.Addr(), err))
			continue
		}
		d.logger.Debug("connected", "server", serverName, "addr", t.Addr(), "tls_name", res.TLSName, "step", res.Step)
		return tlsConn, nil
	}
	return nil, fmt.Errorf("cannot connect to %s (%s): %w", serverName, res.Step, errors.Join(errs...))
}

// The HTTP transport pools connections by URL host. Requests go to
// "https://<pool host>/...", where the pool host encodes the destination's
// server name (hex, which is a valid host label), so that each server name
// has its own pool: "example.org" and "example.org:443" are different
// servers that would otherwise share "example.org:443". The transport's
// dialer decodes the server name and connects through discovery; the Host
// header is set from the resolution.
const poolHostSuffix = ".matrix-federation.invalid"

func poolHost(serverName string) string {
	return hex.EncodeToString([]byte(serverName)) + poolHostSuffix
}

func serverNameOfPoolAddr(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	enc, ok := strings.CutSuffix(host, poolHostSuffix)
	if !ok {
		return "", fmt.Errorf("unexpected dial address %q", addr)
	}
	name, err := hex.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("unexpected dial address %q", addr)
	}
	return string(name), nil
}

// dialTLS is the transport's DialTLSContext.
func (d *discovery) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	name, err := serverNameOfPoolAddr(addr)
	if err != nil {
		return nil, err
	}
	return d.connect(ctx, name)
}
