package mediaapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

func putUpload(t testing.TB, s *servertest.Server, token, mxc, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.ClientURL+"/_matrix/media/v3/upload/"+mxcPath(mxc)+"?filename=late.txt", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	return send(t, s, req)
}

// POST /create, then a download that waits for the content, which a PUT
// then gives; the rules around it: one upload per ID, only its creator,
// a bounded number of pending IDs.
func TestAsyncUpload(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, c *config.Config) {
		c.Media.MaxPendingUploads = 3
	}))[0]
	_, alice := s.RegisterUser(t, "alice")
	_, bob := s.RegisterUser(t, "bob")

	var created struct {
		ContentURI      string `json:"content_uri"`
		UnusedExpiresAt int64  `json:"unused_expires_at"`
	}
	s.DoJSON(t, http.MethodPost, "/_matrix/media/v1/create", alice, nil, &created)
	if !strings.HasPrefix(created.ContentURI, "mxc://"+s.Name+"/") || created.UnusedExpiresAt < time.Now().Add(23*time.Hour).UnixMilli() {
		t.Fatalf("create: %+v", created)
	}
	mxc := created.ContentURI

	// Not uploaded yet: a download that does not wait says so.
	resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(mxc)+"?timeout_ms=0", alice)
	if resp.StatusCode != http.StatusGatewayTimeout || errcode(body) != "M_NOT_YET_UPLOADED" {
		t.Fatalf("download before the upload: %d %s", resp.StatusCode, body)
	}
	// A download that waits gets the content once it comes.
	var wg sync.WaitGroup
	var waited []byte
	var waitedStatus int
	wg.Go(func() {
		resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(mxc)+"?timeout_ms=10000", alice)
		waitedStatus, waited = resp.StatusCode, body
	})
	time.Sleep(300 * time.Millisecond)
	if status, body := putUpload(t, s, bob, mxc, "text/plain", []byte("bob's")); status != http.StatusForbidden || errcode(body) != "M_FORBIDDEN" {
		t.Errorf("PUT by another user: %d %s", status, body)
	}
	if status, body := putUpload(t, s, alice, mxc, "text/plain", []byte("the content")); status != http.StatusOK || string(body) != "{}\n" {
		t.Fatalf("PUT: %d %s", status, body)
	}
	wg.Wait()
	if waitedStatus != http.StatusOK || string(waited) != "the content" {
		t.Errorf("waiting download: %d %q", waitedStatus, waited)
	}
	if status, body := putUpload(t, s, alice, mxc, "text/plain", []byte("again")); status != http.StatusConflict || errcode(body) != "M_CANNOT_OVERWRITE_MEDIA" {
		t.Errorf("second PUT: %d %s", status, body)
	}
	if status, body := putUpload(t, s, alice, "mxc://"+s.Name+"/neverCreated", "text/plain", []byte("x")); status != http.StatusNotFound || errcode(body) != "M_NOT_FOUND" {
		t.Errorf("PUT to an ID never created: %d %s", status, body)
	}
	resp, _ = get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(mxc), alice)
	if cd := resp.Header.Get("Content-Disposition"); cd != `inline; filename="late.txt"` {
		t.Errorf("Content-Disposition %q", cd)
	}

	// At most 3 pending IDs.
	for range 3 {
		s.DoJSON(t, http.MethodPost, "/_matrix/media/v1/create", bob, nil, nil)
	}
	if status, body := s.Do(t, http.MethodPost, "/_matrix/media/v1/create", bob, nil); status != http.StatusTooManyRequests || errcode(body) != "M_LIMIT_EXCEEDED" {
		t.Errorf("fourth pending ID: %d %s", status, body)
	}
}

// The size limit, the quota, and the freeze of the legacy endpoints.
func TestUploadLimits(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, c *config.Config) {
		c.Media.MaxUploadBytes = 2 << 20
		c.Media.UserQuotaBytes = 3 << 20
	}))[0]
	_, tok := s.RegisterUser(t, "alice")
	big := bytes.Repeat([]byte("x"), 2<<20+1)
	if status, body := rawUpload(t, s, tok, "text/plain", "", bytes.NewReader(big)); status != http.StatusRequestEntityTooLarge || errcode(body) != "M_TOO_LARGE" {
		t.Errorf("upload over the limit: %d %s", status, body)
	}
	// Without a Content-Length the limit applies as the body streams.
	if status, body := rawUpload(t, s, tok, "text/plain", "", struct{ *bytes.Reader }{bytes.NewReader(big)}); status != http.StatusRequestEntityTooLarge || errcode(body) != "M_TOO_LARGE" {
		t.Errorf("chunked upload over the limit: %d %s", status, body)
	}
	// Just under the limit is fine (and over the general body limit of
	// other endpoints).
	upload(t, s, tok, "text/plain", "", big[:2<<20])
	// The quota: 2 MiB used of 3.
	if status, body := rawUpload(t, s, tok, "text/plain", "", bytes.NewReader(big[:1<<20+1])); status != http.StatusForbidden || errcode(body) != "M_FORBIDDEN" {
		t.Errorf("upload over the quota: %d %s", status, body)
	}
	if status, body := rawUpload(t, s, tok, "text/plain", "", struct{ *bytes.Reader }{bytes.NewReader(big[:1<<20+1])}); status != http.StatusForbidden || errcode(body) != "M_FORBIDDEN" {
		t.Errorf("chunked upload over the quota: %d %s", status, body)
	}
	upload(t, s, tok, "text/plain", "", big[:1<<20])
	// Nothing was left behind by the refused uploads.
	var n int
	entries, _ := readDirCount(s.Config().Media.StorePath + "/tmp")
	n += entries
	if n != 0 {
		t.Errorf("%d temporary files left", n)
	}
}

func TestFreezeUnauthenticated(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, c *config.Config) {
		c.Media.FreezeUnauthenticated = true
	}))[0]
	_, tok := s.RegisterUser(t, "alice")
	mxc := upload(t, s, tok, "text/plain", "", []byte("new media"))
	if resp, body := get(t, s, "/_matrix/media/v3/download/"+mxcPath(mxc), ""); resp.StatusCode != http.StatusNotFound || errcode(body) != "M_NOT_FOUND" {
		t.Errorf("legacy download of frozen media: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(mxc), tok); resp.StatusCode != http.StatusOK || string(body) != "new media" {
		t.Errorf("authenticated download of frozen media: %d %s", resp.StatusCode, body)
	}
	// A row from before the freeze (legacy_frozen false) still downloads.
	id := strings.TrimPrefix(mxcPath(mxc), s.Name+"/")
	m, err := s.DB().GetMedia(t.Context(), s.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	m.MediaID, m.LegacyFrozen = "OldMediaFromBeforeTheFreeze", false
	if err := s.DB().CreateMedia(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, s, "/_matrix/media/v3/download/"+s.Name+"/OldMediaFromBeforeTheFreeze", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("legacy download of media from before the freeze: %d %s", resp.StatusCode, body)
	}
}
