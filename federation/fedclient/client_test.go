package fedclient

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/fedauth"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/internal/tlsutil"
)

func newTestClient(t *testing.T, ca *tlsutil.CA, r Resolver) (*Client, *keys.Ring) {
	t.Helper()
	ring, err := keys.LoadOrGenerate(filepath.Join(t.TempDir(), "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		r = &fakeResolver{}
	}
	c, err := New(Config{ServerName: "origin.test", Keys: ring, TLS: &tls.Config{RootCAs: ca.Pool()}, Resolver: r, UserAgent: "Myelin/test", IPFilter: loopbackAllowed()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, ring
}

// seen is what a fake remote server saw of one request.
type seen struct {
	host, method, uri, body, tlsName string
	proto                            int
	auth                             fedauth.Header
	authErr                          error
}

// remote is a fake federation server that checks each request's
// signature with the client's key.
type remote struct {
	mu   sync.Mutex
	reqs []seen
}

func (rm *remote) handler(pub func() ed25519.PublicKey, destination string, answer http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{host: r.Host, method: r.Method, uri: r.RequestURI, body: string(body), proto: r.ProtoMajor, tlsName: r.TLS.ServerName}
		s.auth, s.authErr = fedauth.ParseXMatrix(r.Header.Get("Authorization"))
		if s.authErr == nil {
			s.authErr = fedauth.Verify(s.auth, r.Method, r.RequestURI, destination, body, pub())
		}
		rm.mu.Lock()
		rm.reqs = append(rm.reqs, s)
		rm.mu.Unlock()
		answer(w, r)
	})
}

func (rm *remote) last(t *testing.T) seen {
	t.Helper()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.reqs) == 0 {
		t.Fatal("the remote saw no request")
	}
	return rm.reqs[len(rm.reqs)-1]
}

func TestClientSignedRequestToIPLiteral(t *testing.T) {
	ca := testCA(t)
	c, ring := newTestClient(t, ca, nil)
	pub := func() ed25519.PublicKey { _, k := ring.Current(); return k.Public().(ed25519.PublicKey) }
	var rm remote
	// The server name is only known once the server listens: the handler
	// is set then, before any request.
	srv := tlsServer(t, ca, http.NotFoundHandler(), "127.0.0.1")
	dest := srv.Listener.Addr().String()
	srv.Config.Handler = rm.handler(pub, dest, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true,"echo":"`+r.URL.Query().Get("q")+`"}`)
	})

	var out struct {
		OK   bool
		Echo string
	}
	path := "/_matrix/federation/v1/query/test?q=a%2Fb+c&user_id=%40u%3Ax"
	if err := c.DoJSON(context.Background(), "PUT", dest, path, map[string]any{"k": []int{1, 2}}, &out); err != nil {
		t.Fatal(err)
	}
	if !out.OK || out.Echo != "a/b c" {
		t.Fatalf("answer %+v", out)
	}
	s := rm.last(t)
	if s.authErr != nil {
		t.Fatalf("the signature does not verify at the remote: %v", s.authErr)
	}
	keyID, _ := ring.Current()
	if s.auth.Origin != "origin.test" || s.auth.Destination != dest || s.auth.Key != keyID {
		t.Fatalf("X-Matrix header %+v", s.auth)
	}
	if s.host != dest || s.uri != path || s.method != "PUT" || s.body != `{"k":[1,2]}` {
		t.Fatalf("the remote saw %+v", s)
	}
	// The certificate was checked for the IP address, and no SNI was sent.
	if s.tlsName != "" {
		t.Fatalf("SNI %q sent for an IP literal", s.tlsName)
	}
	if s.proto != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2", s.proto)
	}
	// A GET has no body and no content in the signature.
	if err := c.DoJSON(context.Background(), "GET", dest, "/_matrix/federation/v1/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if s := rm.last(t); s.authErr != nil || s.body != "" {
		t.Fatalf("GET: %+v", s)
	}
}

func TestClientDelegatedThroughWellKnownAndSRV(t *testing.T) {
	ca := testCA(t)
	loopback := []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}
	r := &fakeResolver{ips: map[string][]net.IPAddr{
		"example.test": loopback, "host.example.test": loopback,
	}, srv: map[string][]*net.SRV{}}
	c, ring := newTestClient(t, ca, r)
	pub := func() ed25519.PublicKey { _, k := ring.Current(); return k.Public().(ed25519.PublicKey) }

	// example.test delegates to fed.example.test, whose SRV record points
	// at host.example.test:<the fake server's port>. The certificate must
	// be valid for fed.example.test (the delegated name), not for the SRV
	// target.
	var rm remote
	fed := tlsServer(t, ca, rm.handler(pub, "example.test", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{}`)
	}), "fed.example.test")
	r.srv["_matrix-fed._tcp.fed.example.test"] = []*net.SRV{{Target: "host.example.test.", Port: uint16(portOf(t, fed))}}
	wk := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"m.server":"fed.example.test"}`)
	}), "example.test")
	c.d.wellKnownPort = portOf(t, wk)

	res, err := c.Resolve(context.Background(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Host != "fed.example.test" || res.TLSName != "fed.example.test" || res.Step != "well-known-srv" {
		t.Fatalf("resolution %+v", res)
	}
	if err := c.DoJSON(context.Background(), "GET", "example.test", "/_matrix/federation/v1/version", nil, nil); err != nil {
		t.Fatal(err)
	}
	s := rm.last(t)
	if s.host != "fed.example.test" || s.tlsName != "fed.example.test" {
		t.Fatalf("Host %q, SNI %q; want the delegated name", s.host, s.tlsName)
	}
	// The signature names the server names before delegation.
	if s.authErr != nil || s.auth.Destination != "example.test" {
		t.Fatalf("auth %+v: %v", s.auth, s.authErr)
	}

	// A certificate for the SRV target only (not the delegated name) is
	// refused.
	var rm2 remote
	bad := tlsServer(t, ca, rm2.handler(pub, "bad.test", nil), "host.example.test")
	r.mu.Lock()
	r.ips["bad.test"] = loopback
	r.srv["_matrix-fed._tcp.bad.test"] = []*net.SRV{{Target: "host.example.test.", Port: uint16(portOf(t, bad))}}
	r.mu.Unlock()
	c.d.setWellKnown("bad.test", "")
	err = c.DoJSON(context.Background(), "GET", "bad.test", "/_matrix/federation/v1/version", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("certificate for the wrong name: %v", err)
	}
	if len(rm2.reqs) != 0 {
		t.Fatal("a request was sent over a connection with the wrong certificate")
	}
}

func TestClientErrors(t *testing.T) {
	ca := testCA(t)
	c, _ := newTestClient(t, ca, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"errcode":"M_FORBIDDEN","error":"not for you"}`)
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":1500}`)
	})
	mux.HandleFunc("/limited-header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "999999")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down"}`)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `<html>bad gateway</html>`)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2000")
		w.Write(make([]byte, 2000))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 20 {
			w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/notjson", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `not json`) })
	srv := tlsServer(t, ca, mux, "127.0.0.1")
	dest := srv.Listener.Addr().String()
	ctx := context.Background()

	err := c.DoJSON(ctx, "GET", dest, "/forbidden", nil, nil)
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != 403 || fe.Code != "M_FORBIDDEN" || fe.Message != "not for you" || fe.Destination != dest {
		t.Fatalf("Matrix error: %#v", err)
	}
	if !strings.Contains(err.Error(), "M_FORBIDDEN: not for you") {
		t.Fatalf("error text %q", err)
	}
	if err := c.DoJSON(ctx, "GET", dest, "/limited", nil, nil); !errors.As(err, &fe) || fe.Code != "M_LIMIT_EXCEEDED" || fe.RetryAfter != 1500*time.Millisecond {
		t.Fatalf("rate limited: %#v", err)
	}
	if err := c.DoJSON(ctx, "GET", dest, "/limited-header", nil, nil); !errors.As(err, &fe) || fe.RetryAfter != time.Hour {
		t.Fatalf("rate limited with a long Retry-After: %#v", err)
	}
	if err := c.DoJSON(ctx, "GET", dest, "/html", nil, nil); !errors.As(err, &fe) || fe.Status != 502 || fe.Code != "" {
		t.Fatalf("non-Matrix error: %#v", err)
	}
	if err := c.DoJSON(ctx, "GET", dest, "/redirect", nil, nil); !errors.As(err, &fe) || fe.Status != 302 {
		t.Fatalf("redirect: %#v", err)
	}
	for _, p := range []string{"/big", "/big-chunked"} {
		_, err := c.Do(ctx, Request{Method: "GET", Destination: dest, Path: p, MaxResponseBytes: 1000})
		if !errors.Is(err, ErrResponseTooLarge) {
			t.Fatalf("%s: %v, want ErrResponseTooLarge", p, err)
		}
	}
	if _, err := c.Do(ctx, Request{Method: "GET", Destination: dest, Path: "/big", MaxResponseBytes: 2000}); err != nil {
		t.Fatalf("a body at the limit: %v", err)
	}
	start := time.Now()
	_, err = c.Do(ctx, Request{Method: "GET", Destination: dest, Path: "/slow", Timeout: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("slow answer: %v after %v", err, time.Since(start))
	}
	if err := c.DoJSON(ctx, "GET", dest, "/notjson", nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "not the JSON expected") {
		t.Fatalf("not JSON: %v", err)
	}
	if err := c.DoJSON(ctx, "GET", "bad name!", "/x", nil, nil); err == nil || !strings.Contains(err.Error(), "invalid server name") {
		t.Fatalf("bad destination: %v", err)
	}
	if err := c.DoJSON(ctx, "GET", dest, "x", nil, nil); err == nil || !strings.Contains(err.Error(), "must start with /") {
		t.Fatalf("bad path: %v", err)
	}
	// Nothing listens: the error names the destination.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	if err := c.DoJSON(ctx, "GET", closed, "/x", nil, nil); err == nil || !strings.Contains(err.Error(), closed) || strings.Contains(err.Error(), poolHostSuffix) {
		t.Fatalf("unreachable: %v", err)
	}
	// A certificate from a CA the client does not trust.
	other := testCA(t)
	untrusted := tlsServer(t, other, mux, "127.0.0.1")
	if err := c.DoJSON(ctx, "GET", untrusted.Listener.Addr().String(), "/notjson", nil, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}
