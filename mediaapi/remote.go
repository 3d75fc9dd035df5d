package mediaapi

// Remote media: fetched from its origin server, kept in the blob store
// and the media table, and served from there afterwards.
// server-server-api "Content Repository": the authenticated
// /_matrix/federation/v1/media/download endpoint first, then, for servers
// that answer 404 M_UNRECOGNIZED, the legacy /_matrix/media/v3/download
// with allow_remote=false.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// remoteFetchTimeout bounds one fetch of a remote item, body included.
const remoteFetchTimeout = 10 * time.Minute

// remoteMedia returns the cached copy of a remote item, fetching it first
// if need be; concurrent requests for one item share one fetch.
func (a *API) remoteMedia(ctx context.Context, origin, mediaID string) (*storage.Media, error) {
	m, err := a.db.GetMedia(ctx, origin, mediaID)
	if err == nil && (!m.Pending() || m.Quarantined) {
		// A quarantined item is never fetched (the caller refuses it).
		return m, nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if a.fed == nil {
		return nil, httputil.NotFound("this server does not fetch remote media")
	}
	m, err = a.remoteFetches.Do(origin+"/"+mediaID, func() (*storage.Media, error) {
		// Detached from this request: others wait for the same fetch.
		fctx, cancel := a.detached(remoteFetchTimeout)
		defer cancel()
		return a.fetchRemote(fctx, origin, mediaID)
	})
	if err != nil {
		return nil, a.remoteError(ctx, origin, mediaID, err)
	}
	return m, nil
}

// remoteError turns a failed fetch into the client's answer.
func (a *API) remoteError(ctx context.Context, origin, mediaID string, err error) error {
	var me *httputil.Error
	if errors.As(err, &me) {
		return me
	}
	var fe *fedclient.Error
	switch {
	case errors.As(err, &fe) && fe.Status == http.StatusNotFound:
		return httputil.NotFound("the origin server does not have this media")
	case errors.As(err, &fe) && fe.Code == codeNotYetUploaded:
		return notYetUploaded()
	case errors.Is(err, fedclient.ErrResponseTooLarge):
		return httputil.NewError(http.StatusBadGateway, httputil.CodeTooLarge, "the remote media is larger than this server accepts")
	}
	httputil.Logger(ctx).WarnContext(ctx, "cannot fetch remote media", "media", mxcURI(origin, mediaID), "err", err)
	return httputil.NewError(http.StatusBadGateway, httputil.CodeUnknown, "cannot fetch the media from "+origin)
}

// fetchRemote downloads a remote item into the store and records it.
func (a *API) fetchRemote(ctx context.Context, origin, mediaID string) (*storage.Media, error) {
	limit := a.mc.MaxUploadBytes
	resp, err := a.fed.Stream(ctx, fedclient.Request{Method: http.MethodGet, Destination: origin,
		Path:    "/_matrix/federation/v1/media/download/" + url.PathEscape(mediaID) + "?timeout_ms=20000",
		Timeout: remoteFetchTimeout, MaxResponseBytes: limit + maxMetadataBytes + 4096})
	var body io.Reader
	var ctype, name string
	if err == nil {
		defer resp.Body.Close()
		fm, err := parseFederationMultipart(resp.Header.Get("Content-Type"), resp.Body)
		if err != nil {
			return nil, fmt.Errorf("media answer of %s: %w", origin, err)
		}
		ctype, name = fm.ContentType, fm.FileName
		if fm.Location != "" {
			rb, rctype, rname, err := a.followLocation(ctx, fm.Location, limit)
			if err != nil {
				return nil, err
			}
			defer rb.Close()
			body, ctype, name = rb, rctype, rname
		} else {
			body = fm.Body
		}
	} else {
		if !unrecognized(err) {
			return nil, err
		}
		// A server from before Matrix 1.11.
		resp, err = a.fed.Stream(ctx, fedclient.Request{Method: http.MethodGet, Destination: origin,
			Path:    "/_matrix/media/v3/download/" + url.PathEscape(origin) + "/" + url.PathEscape(mediaID) + "?allow_remote=false&timeout_ms=20000",
			Timeout: remoteFetchTimeout, MaxResponseBytes: limit})
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, ctype = resp.Body, resp.Header.Get("Content-Type")
		name = fileNameFromDisposition(resp.Header.Get("Content-Disposition"))
	}
	sum, size, err := a.storeStream(body, limit)
	if err != nil {
		return nil, err
	}
	if _, _, err := mime.ParseMediaType(ctype); err != nil || len(ctype) > 255 {
		ctype = "application/octet-stream"
	}
	now := a.nowMS()
	m := &storage.Media{Origin: origin, MediaID: mediaID, SHA256: sum, Size: size, ContentType: ctype,
		UploadName: name, CreatedTS: now, UploadedTS: now, LegacyFrozen: a.mc.FreezeUnauthenticated}
	if err := a.db.ReplaceRemoteMedia(ctx, m); err != nil {
		a.dropBlobIfUnused(sum)
		return nil, err
	}
	return a.db.GetMedia(ctx, origin, mediaID)
}

// unrecognized reports whether a federation answer says the endpoint does
// not exist there (an older server), which is the spec's cue to fall back.
func unrecognized(err error) bool {
	var fe *fedclient.Error
	if !errors.As(err, &fe) {
		return false
	}
	if fe.Code == httputil.CodeUnrecognized {
		return true
	}
	// Servers that answer unknown paths without a Matrix error.
	return fe.Code == "" && (fe.Status == http.StatusNotFound || fe.Status == http.StatusMethodNotAllowed || fe.Status == http.StatusNotImplemented)
}

// storeStream copies r into a new blob, failing over limit bytes.
func (a *API) storeStream(r io.Reader, limit int64) (string, int64, error) {
	bw, err := a.store.Create()
	if err != nil {
		return "", 0, err
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(bw, io.LimitReader(r, limit+1), *buf)
	if err != nil {
		bw.Abort()
		return "", 0, err
	}
	if n > limit {
		bw.Abort()
		return "", 0, fmt.Errorf("%w: over the limit of %d bytes", fedclient.ErrResponseTooLarge, limit)
	}
	return bw.Commit()
}

// followLocation fetches the media from where a federation answer's
// Location points (a CDN, typically), through a client whose every
// connection is checked against the federation IP denylist.
func (a *API) followLocation(ctx context.Context, loc string, limit int64) (io.ReadCloser, string, string, error) {
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", "", fmt.Errorf("media answer redirects to %q, not an http(s) URL", loc)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", "", err
	}
	resp, err := a.redirects.Do(req)
	if err != nil {
		return nil, "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, "", "", fmt.Errorf("media redirect %s: HTTP %d", u.Redacted(), resp.StatusCode)
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, "", "", fmt.Errorf("%w: %d bytes", fedclient.ErrResponseTooLarge, resp.ContentLength)
	}
	return resp.Body, resp.Header.Get("Content-Type"), fileNameFromDisposition(resp.Header.Get("Content-Disposition")), nil
}
