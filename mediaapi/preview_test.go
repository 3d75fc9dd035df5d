package mediaapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// A page served by the test itself on 127.0.0.1, which the test's config
// allows URL previews to reach.
func TestURLPreview(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, c *config.Config) {
		c.Media.URLPreviewIPRangeAllowlist = "127.0.0.1/32"
	}))[0]
	_, tok := s.RegisterUser(t, "alice")
	png := encodePNG(t, testImage())
	var pageFetches atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/article":
			pageFetches.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><html><head>
				<title>Ignored title</title>
				<meta property="og:title" content="Myelin &amp; friends">
				<meta property="og:description" content="  A  homeserver
				   in Go ">
				<meta property="og:image" content="/img/cover.png">
				<meta property="og:type" content="article">
				</head><body><p>text</p></body></html>`)
		case "/plain":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<html><head><title> Just a title </title><meta name="description" content="From the meta tag"></head><body></body></html>`)
		case "/img/cover.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
		case "/redirect-out":
			// To a loopback address outside the allowlist.
			http.Redirect(w, r, "http://127.0.0.2:"+strings.Split(r.Host, ":")[1]+"/article", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()

	var og map[string]any
	preview := func(u string) (int, []byte) {
		return s.Do(t, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(u), tok, nil)
	}
	status, raw := preview(site.URL + "/article")
	if status != http.StatusOK {
		t.Fatalf("preview: %d %s", status, raw)
	}
	mustJSON(t, raw, &og)
	if og["og:title"] != "Myelin & friends" || og["og:description"] != "A homeserver in Go" || og["og:type"] != "article" {
		t.Errorf("preview: %s", raw)
	}
	img, _ := og["og:image"].(string)
	if !strings.HasPrefix(img, "mxc://"+s.Name+"/") || og["og:image:width"] != float64(640) || og["og:image:height"] != float64(400) ||
		og["matrix:image:size"] != float64(len(png)) || og["og:image:type"] != "image/png" {
		t.Fatalf("preview image: %s", raw)
	}
	resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(img), tok)
	if resp.StatusCode != http.StatusOK || string(body) != string(png) {
		t.Errorf("the preview's image: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Cached: the legacy endpoint answers the same without a fetch.
	status, raw2 := s.Do(t, http.MethodGet, "/_matrix/media/v3/preview_url?url="+url.QueryEscape(site.URL+"/article"), tok, nil)
	if status != http.StatusOK || string(raw2) != string(raw) || pageFetches.Load() != 1 {
		t.Errorf("cached preview: %d, fetches %d, %s", status, pageFetches.Load(), raw2)
	}

	status, raw = preview(site.URL + "/plain")
	og = nil
	mustJSON(t, raw, &og)
	if status != http.StatusOK || og["og:title"] != "Just a title" || og["og:description"] != "From the meta tag" {
		t.Errorf("title and description fallback: %d %s", status, raw)
	}
	// A link straight to an image.
	status, raw = preview(site.URL + "/img/cover.png")
	og = nil
	mustJSON(t, raw, &og)
	if status != http.StatusOK || og["og:image:width"] != float64(640) {
		t.Errorf("preview of an image: %d %s", status, raw)
	}
	// A redirect to an address outside the allowlist is refused.
	if status, raw := preview(site.URL + "/redirect-out"); status != http.StatusForbidden || errcode(raw) != "M_FORBIDDEN" {
		t.Errorf("redirect to a refused address: %d %s", status, raw)
	}
	for _, bad := range []string{"", "ftp://example.org/", "not a url", "/relative"} {
		if status, raw := preview(bad); status != http.StatusBadRequest {
			t.Errorf("preview of %q: %d %s", bad, status, raw)
		}
	}
	if status, raw := s.Do(t, http.MethodGet, "/_matrix/client/v1/media/preview_url?url=x", "", nil); status != http.StatusUnauthorized {
		t.Errorf("preview without a token: %d %s", status, raw)
	}
}

// With the default configuration, loopback and private addresses are
// refused, whatever the host name resolves to.
func TestURLPreviewOfPrivateAddressRefused(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	var fetched atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		fmt.Fprint(w, `<html><head><title>secret</title></head></html>`)
	}))
	defer site.Close()
	port := strings.Split(site.URL, ":")[2]
	for _, u := range []string{site.URL + "/", "http://localhost:" + port + "/", "http://[::1]:" + port + "/"} {
		status, raw := s.Do(t, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(u), tok, nil)
		if status != http.StatusForbidden || errcode(raw) != "M_FORBIDDEN" {
			t.Errorf("preview of %s: %d %s", u, status, raw)
		}
	}
	if fetched.Load() != 0 {
		t.Errorf("the private server was reached %d times", fetched.Load())
	}
}
