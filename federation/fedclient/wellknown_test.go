package fedclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/tlsutil"
)

// testCA is the CA of this package's TLS servers, trusted by the clients
// under test.
func testCA(t *testing.T) *tlsutil.CA {
	t.Helper()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// tlsServer serves h over HTTPS (HTTP/2 enabled) on 127.0.0.1 with a
// certificate from ca for names.
func tlsServer(t *testing.T, ca *tlsutil.CA, h http.Handler, names ...string) *httptest.Server {
	t.Helper()
	cert, err := ca.IssueTLS(names...)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func portOf(t *testing.T, s *httptest.Server) int {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// wellKnownFixture is a fake /.well-known/matrix/server for host names
// that all resolve to 127.0.0.1, with a discovery using it.
type wellKnownFixture struct {
	d       *discovery
	clock   *clock
	fetches atomic.Int32
	mu      sync.Mutex
	answer  func(w http.ResponseWriter, r *http.Request)
}

func newWellKnownFixture(t *testing.T) *wellKnownFixture {
	ca := testCA(t)
	f := &wellKnownFixture{clock: &clock{t: time.Unix(1_700_000_000, 0)}}
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/matrix/server" {
			if r.URL.Path == "/moved" {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"m.server":"redirected.test:1"}`)
				return
			}
			http.NotFound(w, r)
			return
		}
		f.fetches.Add(1)
		f.mu.Lock()
		answer := f.answer
		f.mu.Unlock()
		answer(w, r)
	}), "example.test", "other.test")
	loopback := []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}
	r := &fakeResolver{ips: map[string][]net.IPAddr{
		"example.test": loopback, "other.test": loopback, "wrongcert.test": loopback,
	}}
	f.d = newTestDiscovery(r, &tls.Config{RootCAs: ca.Pool()}, f.clock.now)
	f.d.wellKnownPort = portOf(t, srv)
	return f
}

func (f *wellKnownFixture) set(answer func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

func jsonAnswer(status int, body string, headers ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// expiry returns how long the cached entry for host lives from now.
func (f *wellKnownFixture) expiry(t *testing.T, host string) time.Duration {
	t.Helper()
	f.d.wk.mu.Lock()
	defer f.d.wk.mu.Unlock()
	e, ok := f.d.wk.entries.Get(host)
	if !ok {
		t.Fatalf("nothing cached for %s", host)
	}
	return e.expires.Sub(f.clock.now())
}

func TestWellKnownCaching(t *testing.T) {
	tests := []struct {
		name          string
		answer        func(w http.ResponseWriter, r *http.Request)
		wantDelegated string
		minTTL        time.Duration
		maxTTL        time.Duration
	}{
		{"max-age", jsonAnswer(200, `{"m.server":"fed.example.test:443"}`, "Cache-Control", "public, max-age=3600"),
			"fed.example.test:443", time.Hour, time.Hour},
		{"no cache headers: 24 hours with jitter", jsonAnswer(200, `{"m.server":"fed.example.test"}`),
			"fed.example.test", 24 * time.Hour, 24*time.Hour + 144*time.Minute},
		{"max-age above 48 hours is capped", jsonAnswer(200, `{"m.server":"fed.example.test"}`, "Cache-Control", "max-age=9999999"),
			"fed.example.test", 48 * time.Hour, 48 * time.Hour},
		{"max-age=0 is raised to 5 minutes", jsonAnswer(200, `{"m.server":"fed.example.test"}`, "Cache-Control", "max-age=0"),
			"fed.example.test", 5 * time.Minute, 5 * time.Minute},
		{"no-store is 5 minutes", jsonAnswer(200, `{"m.server":"fed.example.test"}`, "Cache-Control", "no-store, max-age=600"),
			"fed.example.test", 5 * time.Minute, 5 * time.Minute},
		{"Expires", jsonAnswer(200, `{"m.server":"fed.example.test"}`, "Expires", time.Unix(1_700_000_000, 0).Add(3*time.Hour).UTC().Format(http.TimeFormat)),
			"fed.example.test", 3 * time.Hour, 3 * time.Hour},
		{"any Content-Type", jsonAnswer(200, `{"m.server":"fed.example.test"}`, "Content-Type", "text/plain", "Cache-Control", "max-age=600"),
			"fed.example.test", 10 * time.Minute, 10 * time.Minute},
		{"404: an hour", jsonAnswer(404, `{"errcode":"M_NOT_FOUND"}`), "", time.Hour, time.Hour},
		{"not JSON: an hour", jsonAnswer(200, `<html>`), "", time.Hour, time.Hour},
		{"no m.server: an hour", jsonAnswer(200, `{"m.homeserver":{}}`), "", time.Hour, time.Hour},
		{"m.server not a string: an hour", jsonAnswer(200, `{"m.server":42}`), "", time.Hour, time.Hour},
		{"m.server not a server name: an hour", jsonAnswer(200, `{"m.server":"https://fed.example.test/"}`), "", time.Hour, time.Hour},
		{"body too large: an hour", jsonAnswer(200, `{"m.server":"fed.example.test","pad":"`+strings.Repeat("x", 60000)+`"}`), "", time.Hour, time.Hour},
		{"redirect loop: an hour", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}, "", time.Hour, time.Hour},
		{"500: two minutes", jsonAnswer(500, `oops`), "", 2 * time.Minute, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWellKnownFixture(t)
			f.set(tt.answer)
			if got := f.d.wellKnown(context.Background(), "example.test"); got != tt.wantDelegated {
				t.Fatalf("delegated %q, want %q", got, tt.wantDelegated)
			}
			if ttl := f.expiry(t, "example.test"); ttl < tt.minTTL || ttl > tt.maxTTL {
				t.Fatalf("cached for %v, want [%v, %v]", ttl, tt.minTTL, tt.maxTTL)
			}
			// Cached: asking again does not fetch again.
			n := f.fetches.Load()
			f.d.wellKnown(context.Background(), "example.test")
			if f.fetches.Load() != n {
				t.Fatal("a cached result was fetched again")
			}
		})
	}
}

func TestWellKnownExpiryAndBackoff(t *testing.T) {
	f := newWellKnownFixture(t)
	ctx := context.Background()
	f.set(jsonAnswer(200, `{"m.server":"one.test"}`, "Cache-Control", "max-age=3600"))
	if got := f.d.wellKnown(ctx, "example.test"); got != "one.test" {
		t.Fatalf("got %q", got)
	}
	// Still cached just before expiry, fetched again after it.
	f.set(jsonAnswer(200, `{"m.server":"two.test"}`, "Cache-Control", "max-age=3600"))
	f.clock.advance(time.Hour - time.Second)
	if got := f.d.wellKnown(ctx, "example.test"); got != "one.test" || f.fetches.Load() != 1 {
		t.Fatalf("before expiry: %q after %d fetches", got, f.fetches.Load())
	}
	f.clock.advance(2 * time.Second)
	if got := f.d.wellKnown(ctx, "example.test"); got != "two.test" || f.fetches.Load() != 2 {
		t.Fatalf("after expiry: %q after %d fetches", got, f.fetches.Load())
	}

	// Failures in a row back off exponentially, up to an hour.
	f.set(jsonAnswer(503, `down`))
	var waits []time.Duration
	for range 7 {
		f.clock.advance(49 * time.Hour)
		if got := f.d.wellKnown(ctx, "example.test"); got != "" {
			t.Fatalf("a failed lookup delegated to %q", got)
		}
		waits = append(waits, f.expiry(t, "example.test"))
	}
	want := []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("back-off after failures: %v, want %v", waits, want)
		}
	}
	// A success resets the count.
	f.set(jsonAnswer(200, `{"m.server":"three.test"}`, "Cache-Control", "max-age=600"))
	f.clock.advance(2 * time.Hour)
	if got := f.d.wellKnown(ctx, "example.test"); got != "three.test" {
		t.Fatalf("got %q", got)
	}
	f.set(jsonAnswer(502, `down`))
	f.clock.advance(time.Hour)
	f.d.wellKnown(ctx, "example.test")
	if w := f.expiry(t, "example.test"); w != 2*time.Minute {
		t.Fatalf("first failure after a success cached for %v, want 2m", w)
	}
}

func TestWellKnownRedirectAndTLS(t *testing.T) {
	f := newWellKnownFixture(t)
	ctx := context.Background()
	// A redirect to another host (whose certificate is checked for that
	// host) is followed.
	f.set(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("https://other.test:%d/moved", f.d.wellKnownPort), http.StatusMovedPermanently)
	})
	if got := f.d.wellKnown(ctx, "example.test"); got != "redirected.test:1" {
		t.Fatalf("after a redirect: %q", got)
	}
	// A certificate not valid for the host name is no answer.
	f.set(jsonAnswer(200, `{"m.server":"evil.test"}`))
	if got := f.d.wellKnown(ctx, "wrongcert.test"); got != "" {
		t.Fatalf("accepted a well-known over a certificate for another name: %q", got)
	}
	if w := f.expiry(t, "wrongcert.test"); w != 2*time.Minute {
		t.Fatalf("TLS failure cached for %v, want 2m (an outage)", w)
	}
	// A host that does not resolve is no answer either.
	if got := f.d.wellKnown(ctx, "nowhere.test"); got != "" {
		t.Fatalf("unresolvable host delegated to %q", got)
	}
}

func TestWellKnownConcurrentLookupsCollapse(t *testing.T) {
	f := newWellKnownFixture(t)
	release := make(chan struct{})
	f.set(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, `{"m.server":"fed.example.test"}`)
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if got := f.d.wellKnown(context.Background(), "example.test"); got != "fed.example.test" {
				t.Errorf("got %q", got)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent lookups, want 1", n)
	}
}
