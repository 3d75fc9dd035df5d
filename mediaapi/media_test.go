package mediaapi_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// Upload through the v3 API; download through the authenticated v1 API,
// the legacy v3 and r0 APIs, with and without a file name, and in ranges.
func TestUploadDownloadBothFamilies(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	content := make([]byte, 300_000)
	rand.Read(content)
	mxc := upload(t, s, tok, "application/pdf", "War and Peace.pdf", content)
	ref := mxcPath(mxc)

	for _, tc := range []struct{ path, token string }{
		{"/_matrix/client/v1/media/download/" + ref, tok},
		{"/_matrix/media/v3/download/" + ref, ""},
		{"/_matrix/media/r0/download/" + ref, ""},
		{"/_matrix/media/v3/download/" + ref, tok},
	} {
		resp, body := get(t, s, tc.path, tc.token)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
			t.Fatalf("GET %s: %d, %d bytes", tc.path, resp.StatusCode, len(body))
		}
		checkSafeHeaders(t, resp)
		if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
			t.Errorf("GET %s: Content-Type %q", tc.path, ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="War and Peace.pdf"` {
			t.Errorf("GET %s: Content-Disposition %q", tc.path, cd)
		}
	}
	// The authenticated endpoint needs a token.
	if resp, body := get(t, s, "/_matrix/client/v1/media/download/"+ref, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("authenticated download without a token: %d %s", resp.StatusCode, body)
	}
	// A file name in the path overrides the stored one; non-ASCII names
	// go in filename*.
	resp, _ := get(t, s, "/_matrix/client/v1/media/download/"+ref+"/%C3%A9t%C3%A9.pdf", tok)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename*=utf-8''%C3%A9t%C3%A9.pdf` {
		t.Errorf("Content-Disposition with a UTF-8 name: %q", cd)
	}
	// Range requests.
	resp, body := get(t, s, "/_matrix/client/v1/media/download/"+ref, tok, "Range", "bytes=1000-1999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, content[1000:2000]) {
		t.Errorf("range request: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Unknown media, bad IDs.
	for _, p := range []string{"/_matrix/client/v1/media/download/" + s.Name + "/nope", "/_matrix/client/v1/media/download/" + s.Name + "/..%2F..%2Fetc"} {
		resp, body := get(t, s, p, tok)
		if resp.StatusCode != http.StatusNotFound || errcode(body) != "M_NOT_FOUND" {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		checkSafeHeaders(t, resp)
	}
	// /config on both families.
	for _, p := range []string{"/_matrix/client/v1/media/config", "/_matrix/media/v3/config"} {
		var cfg map[string]int64
		s.DoJSON(t, http.MethodGet, p, tok, nil, &cfg)
		if cfg["m.upload.size"] != s.Config().Media.MaxUploadBytes {
			t.Errorf("%s: %v", p, cfg)
		}
	}
}

// Identical uploads share one file; a different upload does not.
func TestUploadDeduplicates(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	a := upload(t, s, tok, "text/plain", "a.txt", []byte("same bytes"))
	b := upload(t, s, tok, "text/plain", "b.txt", []byte("same bytes"))
	if a == b {
		t.Fatal("two uploads got the same mxc URI")
	}
	ma, _ := s.DB().GetMedia(t.Context(), s.Name, strings.TrimPrefix(mxcPath(a), s.Name+"/"))
	mb, _ := s.DB().GetMedia(t.Context(), s.Name, strings.TrimPrefix(mxcPath(b), s.Name+"/"))
	if ma == nil || mb == nil || ma.SHA256 != mb.SHA256 || ma.SHA256 == "" {
		t.Fatalf("rows %+v %+v", ma, mb)
	}
	resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(b), tok)
	if string(body) != "same bytes" || resp.Header.Get("Content-Disposition") != `inline; filename="b.txt"` {
		t.Errorf("download: %q %q", body, resp.Header.Get("Content-Disposition"))
	}
}
