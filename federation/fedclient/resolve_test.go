package fedclient

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from tables, as DNS would; names it does not know
// are "not found".
type fakeResolver struct {
	mu    sync.Mutex
	srv   map[string][]*net.SRV // "_service._proto.name"
	ips   map[string][]net.IPAddr
	fail  map[string]error // a DNS failure for this SRV name or host
	calls []string
}

func (f *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	key := "_" + service + "._" + proto + "." + name
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "SRV "+key)
	if err := f.fail[key]; err != nil {
		return "", nil, err
	}
	if addrs, ok := f.srv[key]; ok {
		return key, addrs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "IP "+host)
	if err := f.fail[host]; err != nil {
		return nil, err
	}
	if ips, ok := f.ips[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeResolver) srvCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "SRV ") {
			out = append(out, c)
		}
	}
	return out
}

func newTestDiscovery(r Resolver, tc *tls.Config, now func() time.Time) *discovery {
	if tc == nil {
		tc = &tls.Config{}
	}
	if now == nil {
		now = time.Now
	}
	return newDiscovery(r, tc, loopbackAllowed(), slog.New(slog.DiscardHandler), now, "test")
}

// loopbackAllowed is the default denylist with 127.0.0.0/8 exempted, as on
// servertest's servers: the test servers listen on 127.0.0.1.
func loopbackAllowed() *IPFilter {
	f := DefaultIPFilter()
	f.allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	return f
}

// setWellKnown puts a well-known result in the cache, as if fetched:
// delegated "" means the host has no delegation.
func (d *discovery) setWellKnown(host, delegated string) {
	d.wk.mu.Lock()
	d.wk.entries.Put(host, wellKnownEntry{delegated: delegated, expires: d.now().Add(time.Hour)})
	d.wk.mu.Unlock()
}

func TestResolve(t *testing.T) {
	srv := func(target string, port uint16) *net.SRV {
		return &net.SRV{Target: target, Port: port, Priority: 10, Weight: 5}
	}
	r := &fakeResolver{
		srv: map[string][]*net.SRV{
			"_matrix-fed._tcp.srv.test":         {srv("a.srv.test.", 8443), srv("b.srv.test.", 8444)},
			"_matrix._tcp.legacy.test":          {srv("old.legacy.test.", 9448)},
			"_matrix-fed._tcp.both.test":        {srv("new.both.test.", 1)},
			"_matrix._tcp.both.test":            {srv("old.both.test.", 2)},
			"_matrix-fed._tcp.fed-srv.test":     {srv("host.fed-srv.test.", 7000)},
			"_matrix._tcp.fed-legacy.test":      {srv("host.fed-legacy.test.", 7001)},
			"_matrix-fed._tcp.unavailable.test": {srv(".", 0)},
		},
		fail: map[string]error{
			"_matrix-fed._tcp.dnsfail.test": &net.DNSError{Err: "server misbehaving", Name: "dnsfail.test", IsTemporary: true},
		},
	}
	d := newTestDiscovery(r, nil, nil)
	// The delegations, as if fetched from /.well-known/matrix/server.
	d.setWellKnown("to-ip.test", "10.0.0.1")
	d.setWellKnown("to-ip-port.test", "10.0.0.1:9000")
	d.setWellKnown("to-ip6.test", "[2001:db8::2]:9001")
	d.setWellKnown("to-port.test", "fed.test:9002")
	d.setWellKnown("to-srv.test", "fed-srv.test")
	d.setWellKnown("to-legacy.test", "fed-legacy.test")
	d.setWellKnown("to-default.test", "fed-default.test")
	for _, h := range []string{"srv.test", "legacy.test", "both.test", "plain.test", "unavailable.test", "dnsfail.test"} {
		d.setWellKnown(h, "")
	}

	tests := []struct {
		name, serverName string
		want             Resolution
	}{
		{"1: IPv4 literal", "192.0.2.1",
			Resolution{Host: "192.0.2.1", TLSName: "192.0.2.1", Targets: []Target{{"192.0.2.1", 8448}}, Step: "ip-literal"}},
		{"1: IPv4 literal with port", "192.0.2.1:1234",
			Resolution{Host: "192.0.2.1:1234", TLSName: "192.0.2.1", Targets: []Target{{"192.0.2.1", 1234}}, Step: "ip-literal"}},
		{"1: IPv6 literal", "[2001:db8::1]",
			Resolution{Host: "[2001:db8::1]", TLSName: "2001:db8::1", Targets: []Target{{"2001:db8::1", 8448}}, Step: "ip-literal"}},
		{"1: IPv6 literal with port", "[::1]:8449",
			Resolution{Host: "[::1]:8449", TLSName: "::1", Targets: []Target{{"::1", 8449}}, Step: "ip-literal"}},
		{"2: host name with port", "example.test:1234",
			Resolution{Host: "example.test:1234", TLSName: "example.test", Targets: []Target{{"example.test", 1234}}, Step: "explicit-port"}},
		{"3.1: delegated to an IP literal", "to-ip.test",
			Resolution{Host: "10.0.0.1", TLSName: "10.0.0.1", Targets: []Target{{"10.0.0.1", 8448}}, Step: "well-known-ip-literal"}},
		{"3.1: delegated to an IP literal with port", "to-ip-port.test",
			Resolution{Host: "10.0.0.1:9000", TLSName: "10.0.0.1", Targets: []Target{{"10.0.0.1", 9000}}, Step: "well-known-ip-literal"}},
		{"3.1: delegated to an IPv6 literal with port", "to-ip6.test",
			Resolution{Host: "[2001:db8::2]:9001", TLSName: "2001:db8::2", Targets: []Target{{"2001:db8::2", 9001}}, Step: "well-known-ip-literal"}},
		{"3.2: delegated host name with port", "to-port.test",
			Resolution{Host: "fed.test:9002", TLSName: "fed.test", Targets: []Target{{"fed.test", 9002}}, Step: "well-known-explicit-port"}},
		{"3.3: delegated host name, _matrix-fed SRV", "to-srv.test",
			Resolution{Host: "fed-srv.test", TLSName: "fed-srv.test", Targets: []Target{{"host.fed-srv.test", 7000}}, Step: "well-known-srv"}},
		{"3.4: delegated host name, legacy _matrix SRV", "to-legacy.test",
			Resolution{Host: "fed-legacy.test", TLSName: "fed-legacy.test", Targets: []Target{{"host.fed-legacy.test", 7001}}, Step: "well-known-legacy-srv"}},
		{"3.5: delegated host name, no SRV", "to-default.test",
			Resolution{Host: "fed-default.test", TLSName: "fed-default.test", Targets: []Target{{"fed-default.test", 8448}}, Step: "well-known-default-port"}},
		{"4: _matrix-fed SRV, in the resolver's order", "srv.test",
			Resolution{Host: "srv.test", TLSName: "srv.test", Targets: []Target{{"a.srv.test", 8443}, {"b.srv.test", 8444}}, Step: "srv"}},
		{"5: legacy _matrix SRV", "legacy.test",
			Resolution{Host: "legacy.test", TLSName: "legacy.test", Targets: []Target{{"old.legacy.test", 9448}}, Step: "legacy-srv"}},
		{"4 before 5", "both.test",
			Resolution{Host: "both.test", TLSName: "both.test", Targets: []Target{{"new.both.test", 1}}, Step: "srv"}},
		{"6: no SRV, port 8448", "plain.test",
			Resolution{Host: "plain.test", TLSName: "plain.test", Targets: []Target{{"plain.test", 8448}}, Step: "default-port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := d.resolve(context.Background(), tt.serverName)
			if err != nil {
				t.Fatalf("resolve(%q): %v", tt.serverName, err)
			}
			tt.want.ServerName = tt.serverName
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("resolve(%q) =\n %+v\nwant\n %+v", tt.serverName, *got, tt.want)
			}
		})
	}

	// An IP literal or an explicit port needs neither /.well-known nor SRV.
	before := len(r.srvCalls())
	for _, name := range []string{"192.0.2.1", "example.test:1234", "[::1]:8449"} {
		if _, _, err := d.resolve(context.Background(), name); err != nil {
			t.Fatal(err)
		}
		if _, ok := d.wk.entries.Get(strings.Split(name, ":")[0]); ok {
			t.Fatalf("%s: a well-known lookup was made", name)
		}
	}
	if after := len(r.srvCalls()); after != before {
		t.Fatalf("SRV lookups for names that need none: %v", r.srvCalls()[before:])
	}

	errorCases := []struct{ serverName, want string }{
		{"", "invalid server name"},
		{"exa mple.test", "invalid server name"},
		{"example.test:99999", "invalid server name"},
		{"::1", "invalid server name"}, // IPv6 needs brackets
		{"unavailable.test", "not available"},
		{"dnsfail.test", "server misbehaving"},
	}
	for _, c := range errorCases {
		if res, _, err := d.resolve(context.Background(), c.serverName); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resolve(%q) = %+v, %v; want an error containing %q", c.serverName, res, err, c.want)
		}
	}
}

func TestIsNotFound(t *testing.T) {
	if !IsNotFound(&net.DNSError{IsNotFound: true}) || IsNotFound(&net.DNSError{IsTimeout: true}) || IsNotFound(errors.New("x")) {
		t.Fatal("IsNotFound misclassifies")
	}
}

func TestPoolHost(t *testing.T) {
	for _, name := range []string{"example.org", "example.org:443", "[::1]:8448", "127.0.0.1:8448"} {
		got, err := serverNameOfPoolAddr(net.JoinHostPort(poolHost(name), "443"))
		if err != nil || got != name {
			t.Fatalf("%q: pool host round trip gave %q, %v", name, got, err)
		}
	}
	if poolHost("example.org") == poolHost("example.org:443") {
		t.Fatal("two server names share a connection pool")
	}
	for _, addr := range []string{"example.org:443", "zz" + poolHostSuffix + ":443", "nope"} {
		if _, err := serverNameOfPoolAddr(addr); err == nil {
			t.Fatalf("%q decoded", addr)
		}
	}
}
