package mediaapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// upload posts body as a media upload and returns its mxc:// URI.
func upload(t testing.TB, s *servertest.Server, token, contentType, filename string, body []byte) string {
	t.Helper()
	status, raw := rawUpload(t, s, token, contentType, filename, bytes.NewReader(body))
	if status != http.StatusOK {
		t.Fatalf("upload: %d %s", status, raw)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || !strings.HasPrefix(out.ContentURI, "mxc://"+s.Name+"/") {
		t.Fatalf("upload: content_uri %q (%v) in %s", out.ContentURI, err, raw)
	}
	return out.ContentURI
}

func rawUpload(t testing.TB, s *servertest.Server, token, contentType, filename string, body io.Reader) (int, []byte) {
	t.Helper()
	u := s.ClientURL + "/_matrix/media/v3/upload"
	if filename != "" {
		u += "?filename=" + urlQueryEscape(filename)
	}
	req, err := http.NewRequest(http.MethodPost, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return send(t, s, req)
}

func send(t testing.TB, s *servertest.Server, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// get fetches path from the client API with token ("" for none) and
// returns the response with its body read.
func get(t testing.TB, s *servertest.Server, path, token string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.ClientURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

// mxcPath turns mxc://server/id into "server/id".
func mxcPath(mxc string) string { return strings.TrimPrefix(mxc, "mxc://") }

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", "#", "%23", "?", "%3F")
	return r.Replace(s)
}

func errcode(raw []byte) string {
	var e struct {
		Code string `json:"errcode"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.Code
}

// checkSafeHeaders asserts the headers every media response carries.
func checkSafeHeaders(t testing.TB, resp *http.Response) {
	t.Helper()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox") {
		t.Errorf("%s: Content-Security-Policy %q, want a sandbox", resp.Request.URL.Path, csp)
	}
	if v := resp.Header.Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", resp.Request.URL.Path, v)
	}
}

func readDirCount(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	return len(entries), err
}

func mustJSON(t testing.TB, raw []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}
