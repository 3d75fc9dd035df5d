package fedclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/myelin-chat/myelin/internal/config"
)

// Server discovery: server-server-api "Resolving server names".

// DefaultPort is the federation port when discovery finds none (IANA's
// registration for matrix-fed).
const DefaultPort = 8448

// Resolver looks up the DNS records discovery needs. *net.Resolver is one;
// tests, which have no DNS, use a fake.
type Resolver interface {
	// LookupSRV looks up _service._proto.name. A missing record is an
	// error for which IsNotFound reports true.
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	// LookupIPAddr resolves a host name through CNAME, AAAA and A records.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// IsNotFound reports whether a Resolver error means that the name or
// record does not exist (rather than that DNS failed).
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// Target is an address to connect to: a host (an IP literal, or a DNS
// name that AAAA and A records resolve) and a port.
type Target struct {
	Host string // without brackets for IPv6
	Port int
}

// Addr is the target as host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Resolution is where and how to reach a server.
type Resolution struct {
	// ServerName is the name resolved; it stays the origin and destination
	// of signed requests whatever delegation says.
	ServerName string
	// Host is the Host header of requests.
	Host string
	// TLSName is the name the server's certificate must be valid for: a
	// host name (also sent as SNI) or an IP address (no SNI).
	TLSName string
	// Targets are the addresses to try, in order.
	Targets []Target
	// Step names the step of the spec's process that decided, for logs
	// and tests: "ip-literal", "explicit-port", "well-known-ip-literal",
	// "well-known-explicit-port", "well-known-srv", "well-known-legacy-srv",
	// "well-known-default-port", "srv", "legacy-srv" or "default-port".
	Step string
}

// route is what a request needs before connecting: the Host header and the
// certificate name, known once the well-known step is done. The targets
// are either fixed or found by SRV lookups on srvName when connecting.
type route struct {
	host, tlsName string
	fixed         *Target
	srvName       string
	step          string // for fixed targets; SRV steps are named by the lookup
	wellKnown     bool   // the route came from /.well-known delegation
}

// splitServerName checks name against the server name grammar and splits
// it into the host (IPv6 literals without brackets) and the port, 0 when
// there is none.
func splitServerName(name string) (host string, port int, err error) {
	if err := config.ValidServerName(name); err != nil {
		return "", 0, fmt.Errorf("invalid server name %q: %v", name, err)
	}
	host = name
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.HasSuffix(name, "]") {
		host = name[:i]
		port, _ = strconv.Atoi(name[i+1:]) // ValidServerName checked it
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port, nil
}

func isIP(host string) bool { return net.ParseIP(host) != nil }

// route runs steps 1 to 3 of the process: IP literals and explicit ports
// need nothing else; other names ask /.well-known/matrix/server (cached).
func (d *discovery) route(ctx context.Context, serverName string) (route, error) {
	host, port, err := splitServerName(serverName)
	if err != nil {
		return route{}, err
	}
	// 1. An IP literal: that address, with the port or 8448, and a
	// certificate for the IP; the Host header is the server name.
	if isIP(host) {
		return route{host: serverName, tlsName: host, fixed: &Target{host, portOr(port)}, step: "ip-literal"}, nil
	}
	// 2. A host name with an explicit port: its address records.
	if port != 0 {
		return route{host: serverName, tlsName: host, fixed: &Target{host, port}, step: "explicit-port"}, nil
	}
	// 3. /.well-known/matrix/server delegation.
	if delegated := d.wellKnown(ctx, host); delegated != "" {
		dhost, dport, err := splitServerName(delegated)
		if err != nil { // wellKnown only keeps valid names
			return route{}, err
		}
		switch {
		case isIP(dhost): // 3.1
			return route{host: delegated, tlsName: dhost, fixed: &Target{dhost, portOr(dport)}, step: "well-known-ip-literal", wellKnown: true}, nil
		case dport != 0: // 3.2
			return route{host: delegated, tlsName: dhost, fixed: &Target{dhost, dport}, step: "well-known-explicit-port", wellKnown: true}, nil
		default: // 3.3 to 3.5: SRV records of the delegated host name
			return route{host: dhost, tlsName: dhost, srvName: dhost, wellKnown: true}, nil
		}
	}
	// 4 to 6: SRV records of the server's own host name.
	return route{host: host, tlsName: host, srvName: host}, nil
}

func portOr(port int) int {
	if port == 0 {
		return DefaultPort
	}
	return port
}

// targets finds where to connect for rt: its fixed target, or the SRV
// records of _matrix-fed._tcp, then of the deprecated _matrix._tcp, then
// the host name itself on port 8448.
func (d *discovery) targets(ctx context.Context, rt route) ([]Target, string, error) {
	if rt.fixed != nil {
		return []Target{*rt.fixed}, rt.step, nil
	}
	prefix := ""
	if rt.wellKnown {
		prefix = "well-known-"
	}
	for _, srv := range []struct{ service, step string }{{"matrix-fed", "srv"}, {"matrix", "legacy-srv"}} {
		ts, err := d.lookupSRV(ctx, srv.service, rt.srvName)
		if err != nil {
			return nil, "", err
		}
		if len(ts) > 0 {
			return ts, prefix + srv.step, nil
		}
	}
	return []Target{{rt.srvName, DefaultPort}}, prefix + "default-port", nil
}

// maxSRVTargets bounds how many SRV targets a connection tries.
const maxSRVTargets = 10

// lookupSRV returns the targets of _service._tcp.name, in the resolver's
// order (net.Resolver sorts by priority and shuffles by weight, RFC 2782),
// or none when there is no such record.
func (d *discovery) lookupSRV(ctx context.Context, service, name string) ([]Target, error) {
	_, addrs, err := d.resolver.LookupSRV(ctx, service, "tcp", name)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("SRV lookup of _%s._tcp.%s: %w", service, name, err)
	}
	// RFC 2782: a single record with target "." means the service is
	// decidedly not available at this domain.
	if len(addrs) == 1 && (addrs[0].Target == "." || addrs[0].Target == "") {
		return nil, fmt.Errorf("_%s._tcp.%s says the service is not available (SRV target \".\")", service, name)
	}
	var ts []Target
	for _, a := range addrs {
		host := strings.TrimSuffix(a.Target, ".")
		if host == "" || a.Port == 0 {
			continue
		}
		ts = append(ts, Target{Host: host, Port: int(a.Port)})
		if len(ts) == maxSRVTargets {
			break
		}
	}
	return ts, nil
}

// resolve runs the whole process for serverName.
func (d *discovery) resolve(ctx context.Context, serverName string) (*Resolution, route, error) {
	rt, err := d.route(ctx, serverName)
	if err != nil {
		return nil, rt, err
	}
	ts, step, err := d.targets(ctx, rt)
	if err != nil {
		return nil, rt, err
	}
	return &Resolution{ServerName: serverName, Host: rt.host, TLSName: rt.tlsName, Targets: ts, Step: step}, rt, nil
}
