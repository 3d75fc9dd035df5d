package mediaapi

// Uploads (content-repo "POST /_matrix/media/v3/upload", "POST
// /_matrix/media/v1/create", "PUT /_matrix/media/v3/upload/{serverName}/
// {mediaId}"). The body streams to the blob store, hashed as it is
// written, so no upload is ever held whole in memory.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// copyBufferSize is the buffer uploads and fetches are copied through:
// large enough that a 10 MiB upload is a few dozen writes.
const copyBufferSize = 256 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// TransferTimeout bounds a whole upload or download (the request deadline
// of other endpoints is too short for large files on slow links).
const TransferTimeout = 30 * time.Minute

// maxUploadNameBytes bounds a stored file name.
const maxUploadNameBytes = 255

func (a *API) postUpload(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	ctype, name := uploadContentType(r), uploadName(r)
	if err := a.checkUploadAllowed(r, d); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	sum, size, err := a.receive(w, r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	now := a.nowMS()
	m := &storage.Media{Origin: a.serverName, MediaID: newMediaID(), SHA256: sum, Size: size,
		ContentType: ctype, UploadName: name, UserID: d.UserID, CreatedTS: now, UploadedTS: now,
		LegacyFrozen: a.mc.FreezeUnauthenticated}
	if err := a.db.CreateMedia(r.Context(), m); err != nil {
		a.dropBlobIfUnused(sum)
		httputil.WriteError(w, r, err)
		return
	}
	a.pregenerateThumbnails(m)
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"content_uri": mxcURI(m.Origin, m.MediaID)})
}

func (a *API) postCreate(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	now := a.now()
	pending, err := a.db.CountPendingUploads(r.Context(), d.UserID, now.UnixMilli())
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if pending >= a.mc.MaxPendingUploads {
		httputil.WriteError(w, r, httputil.LimitExceeded(
			fmt.Sprintf("you have %d media IDs waiting for their content: upload to them or wait until they expire", pending), time.Minute))
		return
	}
	if a.mc.UserQuotaBytes > 0 {
		if used, err := a.db.MediaUsage(r.Context(), d.UserID); err != nil {
			httputil.WriteError(w, r, err)
			return
		} else if used >= a.mc.UserQuotaBytes {
			httputil.WriteError(w, r, quotaExceeded(a.mc.UserQuotaBytes))
			return
		}
	}
	expires := now.Add(a.pendingLifetime).UnixMilli()
	m := &storage.Media{Origin: a.serverName, MediaID: newMediaID(), UserID: d.UserID,
		CreatedTS: now.UnixMilli(), ExpiresTS: expires}
	if err := a.db.CreateMedia(r.Context(), m); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{
		"content_uri": mxcURI(m.Origin, m.MediaID), "unused_expires_at": expires})
}

func (a *API) putUpload(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	origin, mediaID, err := mediaRef(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !a.isLocal(origin) {
		httputil.WriteError(w, r, httputil.NotFound("media IDs of other servers cannot be uploaded to here"))
		return
	}
	m, err := a.db.GetMedia(r.Context(), origin, mediaID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		httputil.WriteError(w, r, httputil.NotFound("unknown media ID: create it with POST /_matrix/media/v1/create"))
		return
	case err != nil:
		httputil.WriteError(w, r, err)
		return
	case m.UserID != d.UserID:
		httputil.WriteError(w, r, httputil.Forbidden("this media ID was created by another user"))
		return
	case !m.Pending():
		httputil.WriteError(w, r, httputil.NewError(http.StatusConflict, codeCannotOverwriteMedia, "this media ID already has its content"))
		return
	case m.ExpiresTS <= a.nowMS():
		httputil.WriteError(w, r, httputil.NotFound("this media ID has expired: create a new one"))
		return
	}
	if err := a.checkUploadAllowed(r, d); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	sum, size, err := a.receive(w, r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	m.SHA256, m.Size, m.ContentType, m.UploadName = sum, size, uploadContentType(r), uploadName(r)
	m.UploadedTS, m.LegacyFrozen = a.nowMS(), a.mc.FreezeUnauthenticated
	if err := a.db.CompleteMediaUpload(r.Context(), m); err != nil {
		a.dropBlobIfUnused(sum)
		if errors.Is(err, storage.ErrMediaExists) {
			err = httputil.NewError(http.StatusConflict, codeCannotOverwriteMedia, "this media ID already has its content")
		}
		httputil.WriteError(w, r, err)
		return
	}
	a.pregenerateThumbnails(m)
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}

func quotaExceeded(quota int64) error {
	return httputil.Forbidden(fmt.Sprintf("this upload would take you over your media quota of %d bytes", quota))
}

func (a *API) tooLarge() error {
	return httputil.TooLarge(fmt.Sprintf("cannot upload files larger than %d bytes", a.mc.MaxUploadBytes))
}

// checkUploadAllowed refuses, before reading the body, an upload whose
// declared size is over the file limit or the user's quota.
func (a *API) checkUploadAllowed(r *http.Request, d *auth.Device) error {
	if r.ContentLength > a.mc.MaxUploadBytes {
		return a.tooLarge()
	}
	if a.mc.UserQuotaBytes > 0 {
		used, err := a.db.MediaUsage(r.Context(), d.UserID)
		if err != nil {
			return err
		}
		if used+max(r.ContentLength, 0) > a.mc.UserQuotaBytes {
			return quotaExceeded(a.mc.UserQuotaBytes)
		}
		// The body's real size is checked again once received.
		if r.ContentLength < 0 {
			r.Body = &quotaReader{r: r.Body, left: a.mc.UserQuotaBytes - used, quota: a.mc.UserQuotaBytes}
		}
	}
	return nil
}

// quotaReader fails a body of unknown length once it exceeds what is left
// of the quota.
type quotaReader struct {
	r           io.ReadCloser
	left, quota int64
}

var errQuota = errors.New("media quota exceeded")

func (q *quotaReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	q.left -= int64(n)
	if q.left < 0 {
		return n, errQuota
	}
	return n, err
}

func (q *quotaReader) Close() error { return q.r.Close() }

// receive streams the request body into a new blob and returns its hash
// and size. Over media.max_upload_bytes it is 413 M_TOO_LARGE and nothing
// is kept.
func (a *API) receive(w http.ResponseWriter, r *http.Request) (string, int64, error) {
	// Large bodies on slow links need longer than the connection's usual
	// deadlines (the server mounts these paths with TransferTimeout as
	// their request deadline).
	extendDeadlines(w)
	bw, err := a.store.Create()
	if err != nil {
		return "", 0, err
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(bw, io.LimitReader(r.Body, a.mc.MaxUploadBytes+1), *buf)
	if err != nil {
		bw.Abort()
		if errors.Is(err, errQuota) {
			return "", 0, quotaExceeded(a.mc.UserQuotaBytes)
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", 0, a.tooLarge()
		}
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return "", 0, ctxErr
		}
		return "", 0, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "cannot read the upload: "+err.Error())
	}
	if n > a.mc.MaxUploadBytes {
		bw.Abort()
		return "", 0, a.tooLarge()
	}
	return bw.Commit()
}

// extendDeadlines gives the connection TransferTimeout to read the body
// and write the answer.
func extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(TransferTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

// uploadContentType is the upload's Content-Type, application/octet-stream
// when absent or not a media type.
func uploadContentType(r *http.Request) string {
	ct := strings.TrimSpace(r.Header.Get("Content-Type"))
	if ct == "" || len(ct) > 255 {
		return "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "application/octet-stream"
	}
	return ct
}

// uploadName is the filename query parameter, cleaned of control
// characters and bounded.
func uploadName(r *http.Request) string {
	return cleanFileName(r.URL.Query().Get("filename"))
}

func cleanFileName(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return -1
		}
		return c
	}, s)
	for len(s) > maxUploadNameBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// dropBlobIfUnused deletes a blob no row uses (after a failed insert).
func (a *API) dropBlobIfUnused(sum string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if used, err := a.db.MediaBlobInUse(ctx, sum); err == nil && !used {
		_ = a.store.Delete(sum)
	}
}
