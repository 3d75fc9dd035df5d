package mediaapi

// Downloads (content-repo "GET /_matrix/client/v1/media/download/..." and
// the deprecated "GET /_matrix/media/v3/download/...").

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

const (
	// defaultWaitForUpload and maxWaitForUpload bound timeout_ms, the time
	// a download waits for an asynchronous upload's content.
	defaultWaitForUpload = 20 * time.Second
	maxWaitForUpload     = 60 * time.Second
	// uploadPollInterval is how often a waiting download looks again (the
	// content may arrive through another process).
	uploadPollInterval = 200 * time.Millisecond
)

// access says which family of endpoints a request came through.
type access int

const (
	authenticated access = iota // /_matrix/client/v1/media: any media
	legacy                      // /_matrix/media/v3: not frozen media; allow_remote applies
	federated                   // /_matrix/federation/v1/media: local media only
)

func (a *API) authedDownload(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	a.download(w, r, authenticated)
}

func (a *API) legacyDownload(w http.ResponseWriter, r *http.Request) {
	a.optionalAuth(func(w http.ResponseWriter, r *http.Request) { a.download(w, r, legacy) })(w, r)
}

// optionalAuth serves the legacy unauthenticated endpoints: an access
// token, if sent, must still be valid (a client must learn it was logged
// out), but a server's X-Matrix signature, which servers falling back to
// these endpoints send, is no token and is ignored.
func (a *API) optionalAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "X-Matrix ") {
			h(w, r)
			return
		}
		a.auth.Optional(func(w http.ResponseWriter, r *http.Request, _ *auth.Device) { h(w, r) })(w, r)
	}
}

func (a *API) download(w http.ResponseWriter, r *http.Request, how access) {
	origin, mediaID, err := mediaRef(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	m, err := a.resolve(r, origin, mediaID, how)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	name := m.UploadName
	if _, ok := mux.Vars(r)["fileName"]; ok {
		name = cleanFileName(httputil.PathVar(r, "fileName"))
	}
	a.serveBlob(w, r, m.SHA256, m.ContentType, name)
}

// resolve returns the media item with its content, fetching a remote one
// or waiting for a pending upload, as the request allows.
func (a *API) resolve(r *http.Request, origin, mediaID string, how access) (*storage.Media, error) {
	ctx := r.Context()
	var m *storage.Media
	var err error
	if a.isLocal(origin) {
		if m, err = a.waitForContent(r, origin, mediaID); err != nil {
			return nil, err
		}
	} else {
		if how == federated {
			return nil, httputil.NotFound("only this server's own media is served over federation")
		}
		if how == legacy && r.URL.Query().Get("allow_remote") == "false" {
			m, err = a.db.GetMedia(ctx, origin, mediaID)
			if errors.Is(err, storage.ErrNotFound) || err == nil && m.Pending() {
				return nil, httputil.NotFound("remote media not cached here, and allow_remote is false")
			}
			if err != nil {
				return nil, err
			}
		} else if m, err = a.remoteMedia(ctx, origin, mediaID); err != nil {
			return nil, err
		}
	}
	if m.Quarantined {
		return nil, httputil.NotFound("this media has been quarantined by the server's administrator")
	}
	if how == legacy && m.LegacyFrozen {
		return nil, httputil.NotFound("this media is only served on the authenticated /_matrix/client/v1/media endpoints")
	}
	return m, nil
}

// waitForContent returns a local item, waiting up to timeout_ms for the
// content of one created with /create.
func (a *API) waitForContent(r *http.Request, origin, mediaID string) (*storage.Media, error) {
	wait := defaultWaitForUpload
	if v := r.URL.Query().Get("timeout_ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return nil, httputil.InvalidParam("timeout_ms must be a non-negative integer")
		}
		wait = min(time.Duration(ms)*time.Millisecond, maxWaitForUpload)
	}
	deadline := time.Now().Add(wait)
	for {
		m, err := a.db.GetMedia(r.Context(), origin, mediaID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, httputil.NotFound("no such media")
		}
		if err != nil {
			return nil, err
		}
		if !m.Pending() {
			return m, nil
		}
		if m.ExpiresTS <= a.nowMS() {
			return nil, httputil.NotFound("no such media")
		}
		if time.Now().Add(uploadPollInterval).After(deadline) {
			return nil, notYetUploaded()
		}
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(uploadPollInterval):
		}
	}
}

func notYetUploaded() error {
	return httputil.NewError(http.StatusGatewayTimeout, codeNotYetUploaded, "the content has not been uploaded yet")
}

// serveBlob answers with a stored content: range requests and conditional
// requests through http.ServeContent, and the headers that keep it from
// running in a client's origin.
func (a *API) serveBlob(w http.ResponseWriter, r *http.Request, sum, contentType, fileName string) {
	b, err := a.store.Open(sum)
	if errors.Is(err, fs.ErrNotExist) {
		httputil.Logger(r.Context()).ErrorContext(r.Context(), "media file missing from the store", "sha256", sum)
		httputil.WriteError(w, r, httputil.NotFound("the media's file is missing"))
		return
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	defer b.Close()
	extendDeadlines(w)
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", contentDisposition(contentType, fileName))
	// The content behind an mxc:// URI never changes.
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, "", b.ModTime(), b)
}

// inlineTypes are the content types the spec lists as safe to serve
// inline (content-repo "Serving inline content"); everything else is an
// attachment, which browsers download rather than render.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true,
	"application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true, "image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true,
	"audio/wave": true, "audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true,
	"audio/flac": true, "audio/x-flac": true,
}

// mediaType is the lower-case type/subtype of a Content-Type value.
func mediaType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// contentDisposition builds the Content-Disposition header: inline for
// the safe types, attachment otherwise, with the file name (RFC 6266; a
// name beyond plain ASCII goes in filename*, RFC 8187).
func contentDisposition(contentType, fileName string) string {
	disp := "attachment"
	if inlineTypes[mediaType(contentType)] {
		disp = "inline"
	}
	if fileName == "" {
		return disp
	}
	ascii := true
	for i := 0; i < len(fileName); i++ {
		if c := fileName[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		// Always quoted, as the spec's examples are: some clients read
		// no other form.
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(fileName)
		return disp + `; filename="` + q + `"`
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": fileName}); v != "" {
		return v
	}
	return disp
}
