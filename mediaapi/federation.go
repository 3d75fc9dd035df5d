package mediaapi

// Serving this server's media to other servers (server-server-api
// "Content Repository": GET /_matrix/federation/v1/media/download/
// {mediaId} and /thumbnail/{mediaId}). The federation package routes them
// behind its X-Matrix authentication and calls these.

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// ServeFederationDownload answers a federation download of a local item
// with the multipart/mixed body the spec defines.
func (a *API) ServeFederationDownload(w http.ResponseWriter, r *http.Request, mediaID string) {
	a.secure(func(w http.ResponseWriter, r *http.Request) {
		if !validMediaID(mediaID) {
			httputil.WriteError(w, r, httputil.NotFound("not a valid media ID"))
			return
		}
		m, err := a.resolve(r, a.serverName, mediaID, federated)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		a.serveMultipart(w, r, m.SHA256, m.ContentType, m.UploadName)
	})(w, r)
}

// ServeFederationThumbnail answers a federation thumbnail request of a
// local item.
func (a *API) ServeFederationThumbnail(w http.ResponseWriter, r *http.Request, mediaID string) {
	a.secure(func(w http.ResponseWriter, r *http.Request) {
		if !validMediaID(mediaID) {
			httputil.WriteError(w, r, httputil.NotFound("not a valid media ID"))
			return
		}
		p, err := parseThumbParams(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		m, err := a.resolve(r, a.serverName, mediaID, federated)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		t, err := a.thumbnailOf(r.Context(), m, p)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		a.serveMultipart(w, r, t.SHA256, t.ContentType, thumbnailFileName(t.ContentType))
	})(w, r)
}

func (a *API) serveMultipart(w http.ResponseWriter, r *http.Request, sum, contentType, fileName string) {
	b, err := a.store.Open(sum)
	if errors.Is(err, fs.ErrNotExist) {
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
	mw := newMultipartWriter(w)
	w.Header().Set("Content-Type", mw.ContentType())
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Disposition", contentDisposition(contentType, fileName))
	hdr.Set("Content-Length", strconv.FormatInt(b.Size(), 10))
	if err := mw.WriteHead(hdr); err != nil {
		return
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(mw, b, *buf); err != nil {
		// The status is sent: all that can be done is to cut the answer
		// short, which the other server sees as a broken multipart body.
		return
	}
	_ = mw.Close()
}
