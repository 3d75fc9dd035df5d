package fedclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/internal/tlsutil"
)

func TestIPFilterCheck(t *testing.T) {
	def := DefaultIPFilter()
	allowLoopback := loopbackAllowed()
	none := NewIPFilter(nil, nil)
	everything := NewIPFilter(nil, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	cases := []struct {
		addr   string
		filter *IPFilter
		ok     bool
	}{
		{"1.1.1.1", def, true},
		{"2606:4700:4700::1111", def, true},
		{"127.0.0.1", def, false},
		{"127.255.0.9", def, false},
		{"10.20.30.40", def, false},
		{"172.31.255.255", def, false},
		{"172.32.0.1", def, true}, // just outside 172.16.0.0/12
		{"192.168.1.1", def, false},
		{"100.64.0.1", def, false},
		{"169.254.169.254", def, false}, // cloud metadata
		{"203.0.113.7", def, false},
		{"224.0.0.1", def, false},
		{"::1", def, false},
		{"fe80::1", def, false},
		{"fe80::1%eth0", def, false}, // a zone must not hide the address from the ranges
		{"fd00::1", def, false},
		{"2001:db8::1", def, false},
		{"ff02::1", def, false},
		{"fec0::1", def, false},
		// IPv6 forms of IPv4 addresses are checked as those.
		{"::ffff:127.0.0.1", def, false},
		{"::ffff:10.0.0.1", def, false},
		{"::ffff:1.1.1.1", def, true},
		{"::127.0.0.1", def, false},       // IPv4-compatible
		{"2002:7f00:1::1", def, false},    // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", def, false}, // 6to4 of 169.254.169.254
		{"2002:101:101::1", def, true},    // 6to4 of 1.1.1.1
		{"64:ff9b::10.0.0.1", def, false}, // NAT64 of 10.0.0.1
		{"64:ff9b::1.1.1.1", def, true},   // NAT64 of 1.1.1.1
		{"0.0.0.0", def, false},           // unspecified: reaches this host
		{"::", def, false},                // likewise
		{"0.0.0.0", everything, false},    // whatever the allowlist says
		{"::ffff:0.0.0.0", everything, false},
		// The allowlist exempts, in every form.
		{"127.0.0.1", allowLoopback, true},
		{"::ffff:127.0.0.1", allowLoopback, true},
		{"2002:7f00:1::1", allowLoopback, true},
		{"10.0.0.1", allowLoopback, false},
		{"::1", allowLoopback, false},
		// An empty denylist refuses nothing but the unspecified addresses.
		{"10.0.0.1", none, true},
		{"::1", none, true},
		{"::", none, false},
	}
	for _, c := range cases {
		err := c.filter.Check(netip.MustParseAddr(c.addr))
		if c.ok && err != nil {
			t.Errorf("%s refused: %v", c.addr, err)
		}
		if !c.ok && !errors.Is(err, ErrAddressRefused) {
			t.Errorf("%s: %v, want refused", c.addr, err)
		}
	}
}

func TestIPFilterControl(t *testing.T) {
	f := DefaultIPFilter()
	if err := f.Control("tcp4", "127.0.0.1:5432", nil); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("127.0.0.1:5432: %v", err)
	}
	if err := f.Control("tcp6", "[fe80::1%lo]:8448", nil); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("[fe80::1%%lo]:8448: %v", err)
	}
	if err := f.Control("tcp4", "1.1.1.1:8448", nil); err != nil {
		t.Fatalf("1.1.1.1:8448: %v", err)
	}
	// Not an IP and port: refused rather than guessed at.
	if err := f.Control("tcp", "example.org:8448", nil); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("a host name: %v", err)
	}
}

// DefaultIPFilter denies Synapse's list (the config option's default).
func TestDefaultDenylist(t *testing.T) {
	want := []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		"192.0.0.0/24", "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "::1/128", "fe80::/10", "fc00::/7",
		"2001:db8::/32", "ff00::/8", "fec0::/10"}
	got := DefaultIPFilter().deny
	if len(got) != len(want) {
		t.Fatalf("%d ranges, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("range %d is %s, want %s", i, got[i], want[i])
		}
	}
}

// countingTLSServer is a federation server on 127.0.0.1 that counts the
// connections it accepts.
func countingTLSServer(t *testing.T, ca *tlsutil.CA, names ...string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	cert, err := ca.IssueTLS(names...)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"m.server":"127.0.0.1:1"}`) // also a /.well-known answer
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, &conns
}

// A client with the default configuration refuses a server on a private
// address however discovery reaches it, without connecting; the same
// server, allowlisted, is reached.
func TestClientRefusesPrivateAddresses(t *testing.T) {
	ca := testCA(t)
	srv, conns := countingTLSServer(t, ca, "127.0.0.1", "private.test")
	port := portOf(t, srv)
	ring, err := keys.LoadOrGenerate(filepath.Join(t.TempDir(), "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	loopback := []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}
	r := &fakeResolver{
		ips: map[string][]net.IPAddr{
			"private.test":   loopback,
			"mapped.test":    {{IP: net.ParseIP("::ffff:127.0.0.1")}},
			"wellknown.test": loopback,
			"srv.test":       {{IP: net.ParseIP("1.1.1.1")}},
		},
		srv: map[string][]*net.SRV{
			"_matrix-fed._tcp.srv.test": {{Target: "private.test.", Port: uint16(port)}},
		},
	}
	newClient := func(f *IPFilter) *Client {
		c, err := New(Config{ServerName: "origin.test", Keys: ring, TLS: &tls.Config{RootCAs: ca.Pool()}, Resolver: r, IPFilter: f,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		c.d.wellKnownPort = port // /.well-known lookups would reach srv too
		return c
	}
	c := newClient(nil) // the default filter
	// A public-looking name whose /.well-known (served from a public
	// address) delegates to a private address.
	c.d.setWellKnown("delegating.test", "127.0.0.1:"+strconv.Itoa(port))
	c.d.setWellKnown("srv.test", "")

	for _, dest := range []string{
		"127.0.0.1:" + strconv.Itoa(port),          // IP literal
		"[::ffff:127.0.0.1]:" + strconv.Itoa(port), // IPv4-mapped IPv6 literal
		"private.test:" + strconv.Itoa(port),       // a name resolving to a private address
		"mapped.test:" + strconv.Itoa(port),        // ... to an IPv4-mapped one
		"srv.test",                                 // an SRV record pointing at such a name
		"delegating.test",                          // /.well-known delegation to a private address
		"wellknown.test",                           // its /.well-known lookup alone would connect
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Do(ctx, Request{Method: "GET", Destination: dest, Path: "/_matrix/key/v2/server"})
		cancel()
		if !errors.Is(err, ErrAddressRefused) {
			t.Errorf("%s: %v, want refused", dest, err)
		}
		if n := conns.Swap(0); n != 0 {
			t.Errorf("%s: the server accepted %d connections", dest, n)
		}
	}

	// Allowlisted, the same server is reached.
	allowed := newClient(loopbackAllowed())
	if _, err := allowed.Do(context.Background(), Request{Method: "GET", Destination: "127.0.0.1:" + strconv.Itoa(port), Path: "/_matrix/key/v2/server"}); err != nil {
		t.Fatal(err)
	}
	if conns.Load() == 0 {
		t.Fatal("allowlisted, no connection was made")
	}
}
