package mediaapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// requestsServed counts the requests a server answered on a route.
func requestsServed(t testing.TB, s *servertest.Server, route string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "myelin_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// Media uploaded on one server is downloaded and thumbnailed through
// another, which fetches it over federation once however many ask at
// the same time, and then serves it from its cache.
func TestRemoteMediaBetweenServers(t *testing.T) {
	ss := servertest.Start(t, 2)
	origin, other := ss[0], ss[1]
	_, alice := origin.RegisterUser(t, "alice")
	_, bob := other.RegisterUser(t, "bob")

	content := make([]byte, 3<<20)
	rand.Read(content)
	file := upload(t, origin, alice, "application/zip", "archive.zip", content)
	pic := upload(t, origin, alice, "image/jpeg", "photo.jpg", encodeJPEG(t, testImage()))

	const route = "/_matrix/federation/v1/media/download/{mediaId}"
	before := requestsServed(t, origin, route)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, body := get(t, other, "/_matrix/client/v1/media/download/"+mxcPath(file), bob)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
				t.Errorf("remote download: %d, %d bytes", resp.StatusCode, len(body))
				return
			}
			if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="archive.zip"` {
				t.Errorf("remote download: Content-Disposition %q", cd)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
				t.Errorf("remote download: Content-Type %q", ct)
			}
		})
	}
	wg.Wait()
	if n := requestsServed(t, origin, route) - before; n != 1 {
		t.Errorf("the origin served %v federation downloads for 8 concurrent requests, want 1", n)
	}
	// Now from the cache, on the legacy endpoint too.
	resp, body := get(t, other, "/_matrix/media/v3/download/"+mxcPath(file), "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Errorf("cached remote download (legacy): %d", resp.StatusCode)
	}
	if n := requestsServed(t, origin, route) - before; n != 1 {
		t.Errorf("the origin served %v federation downloads, want 1", n)
	}

	// A remote image's thumbnail.
	resp, body = get(t, other, "/_matrix/client/v1/media/thumbnail/"+mxcPath(pic)+"?width=96&height=96&method=crop", bob)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("remote thumbnail: %d %s", resp.StatusCode, body)
	}
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 96 || cfg.Height != 96 {
		t.Errorf("remote thumbnail: %v %v", cfg, err)
	}

	// Remote media the origin does not have, and allow_remote=false for
	// media not cached.
	resp, body = get(t, other, "/_matrix/client/v1/media/download/"+origin.Name+"/doesNotExist", bob)
	if resp.StatusCode != http.StatusNotFound || errcode(body) != "M_NOT_FOUND" {
		t.Errorf("unknown remote media: %d %s", resp.StatusCode, body)
	}
	other2 := upload(t, origin, alice, "text/plain", "", []byte("not fetched yet"))
	resp, body = get(t, other, "/_matrix/media/v3/download/"+mxcPath(other2)+"?allow_remote=false", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("allow_remote=false: %d %s", resp.StatusCode, body)
	}

	// Older servers fetch our media from the legacy path on the federation
	// listener, signing the request: the signature is no access token.
	req, _ := http.NewRequest(http.MethodGet, origin.FederationURL+"/_matrix/media/v3/download/"+mxcPath(file)+"?allow_remote=false", nil)
	req.Header.Set("Authorization", `X-Matrix origin="old.example",key="ed25519:a",sig="xyz"`)
	lresp, err := origin.FedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lbody, _ := io.ReadAll(lresp.Body)
	lresp.Body.Close()
	if lresp.StatusCode != http.StatusOK || !bytes.Equal(lbody, content) {
		t.Errorf("legacy download on the federation listener: %d, %d bytes", lresp.StatusCode, len(lbody))
	}

	// The federation endpoint needs a signed request.
	req, _ = http.NewRequest(http.MethodGet, origin.FederationURL+"/_matrix/federation/v1/media/download/"+strings.TrimPrefix(mxcPath(file), origin.Name+"/"), nil)
	fresp, err := origin.FedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fresp.Body.Close()
	if fresp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned federation media request: %d", fresp.StatusCode)
	}
}

// fakeOrigin is an HTTPS server standing for another homeserver, with a
// certificate from the servers' test CA.
func fakeOrigin(t *testing.T, ca interface {
	IssueTLS(...string) (tls.Certificate, error)
}, h http.Handler) (*httptest.Server, string) {
	srv := httptest.NewUnstartedServer(h)
	cert, err := ca.IssueTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "https://")
}

// A server from before Matrix 1.11 answers the federation media endpoint
// with 404 M_UNRECOGNIZED; the legacy endpoint is asked then, with
// allow_remote=false. A server that answers with a Location redirect
// (a CDN) has its media fetched from there.
func TestRemoteMediaFallbackAndRedirect(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "bob")

	var legacyQuery string
	_, oldName := fakeOrigin(t, s.CA, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/_matrix/federation/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		case strings.HasPrefix(r.URL.Path, "/_matrix/media/v3/download/"):
			legacyQuery = r.URL.RawQuery
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Disposition", `inline; filename="old.txt"`)
			fmt.Fprint(w, "from an old server")
		default:
			http.NotFound(w, r)
		}
	}))
	resp, body := get(t, s, "/_matrix/client/v1/media/download/"+oldName+"/oldMedia1", tok)
	if resp.StatusCode != http.StatusOK || string(body) != "from an old server" {
		t.Fatalf("fallback download: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(legacyQuery, "allow_remote=false") {
		t.Errorf("legacy request query %q lacks allow_remote=false", legacyQuery)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `inline; filename="old.txt"` {
		t.Errorf("fallback download: Content-Disposition %q", cd)
	}

	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/ogg")
		fmt.Fprint(w, "bytes from the CDN")
	}))
	t.Cleanup(cdn.Close)
	_, newName := fakeOrigin(t, s.CA, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "X-Matrix ") {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "multipart/mixed; boundary=gc0p4Jq0M2Yt08jU534c0p")
		fmt.Fprint(w, "--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: application/json\r\n\r\n{}\r\n"+
			"--gc0p4Jq0M2Yt08jU534c0p\r\nLocation: "+cdn.URL+"/media/x\r\n\r\n\r\n--gc0p4Jq0M2Yt08jU534c0p--\r\n")
	}))
	resp, body = get(t, s, "/_matrix/client/v1/media/download/"+newName+"/cdnMedia1", tok)
	if resp.StatusCode != http.StatusOK || string(body) != "bytes from the CDN" || resp.Header.Get("Content-Type") != "audio/ogg" {
		t.Fatalf("download through a Location: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}
