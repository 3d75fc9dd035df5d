package mediaapi

// URL previews (content-repo "GET /_matrix/client/v1/media/preview_url").
// The server fetches a page a user's client asks about, which makes it a
// tool for reaching whatever the server can reach: every connection is
// checked against media.url_preview_ip_range_denylist (private, loopback,
// link-local and reserved ranges by default) after DNS resolution and on
// every redirect, and the fetch is bounded in size and time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

const (
	// previewTimeout bounds building one preview, page and image.
	previewTimeout = 30 * time.Second
	// previewCacheLifetime is how long a preview is served from the cache.
	previewCacheLifetime = time.Hour
	// maxPreviewURLBytes bounds the URL asked about.
	maxPreviewURLBytes = 2048
)

// previewer fetches pages for previews.
type previewer struct {
	client   *http.Client
	maxBytes int64
}

func newPreviewer(filter *fedclient.IPFilter, maxBytes int64) *previewer {
	return &previewer{client: newFilteredHTTPClient(filter.Check, previewTimeout), maxBytes: maxBytes}
}

func (a *API) getPreviewURL(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	if !a.mc.URLPreviewEnabled {
		httputil.WriteError(w, r, httputil.Unrecognized("URL previews are disabled on this server"))
		return
	}
	raw := r.URL.Query().Get("url")
	if raw == "" {
		httputil.WriteError(w, r, httputil.MissingParam("url is required"))
		return
	}
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxPreviewURLBytes || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		httputil.WriteError(w, r, httputil.InvalidParam("url must be an absolute http(s) URL"))
		return
	}
	u.Fragment, u.RawFragment = "", ""
	key := u.String()
	if cached, ok, err := a.db.GetURLPreview(r.Context(), key, a.nowMS()); err != nil {
		httputil.WriteError(w, r, err)
		return
	} else if ok {
		httputil.WriteRawJSON(w, http.StatusOK, []byte(cached))
		return
	}
	body, err := a.previews.Do(key, func() ([]byte, error) {
		ctx, cancel := a.detached(previewTimeout)
		defer cancel()
		return a.buildPreview(ctx, u)
	})
	if err != nil {
		httputil.WriteError(w, r, previewError(r.Context(), err))
		return
	}
	httputil.WriteRawJSON(w, http.StatusOK, body)
}

func previewError(ctx context.Context, err error) error {
	if errors.Is(err, errAddressRefused) {
		return httputil.Forbidden("URL previews of this address are not allowed")
	}
	var me *httputil.Error
	if errors.As(err, &me) {
		return me
	}
	httputil.Logger(ctx).InfoContext(ctx, "URL preview failed", "err", err)
	return httputil.NewError(http.StatusBadGateway, httputil.CodeUnknown, "cannot preview this URL: the page could not be fetched")
}

// buildPreview fetches u and returns its preview as JSON, cached.
func (a *API) buildPreview(ctx context.Context, u *url.URL) ([]byte, error) {
	resp, err := a.preview.get(ctx, u.String())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("fetching %s: HTTP %d", u.Redacted(), resp.StatusCode)
	}
	og := map[string]any{}
	ctype := mediaType(resp.Header.Get("Content-Type"))
	switch {
	case ctype == "text/html" || ctype == "application/xhtml+xml":
		page, err := io.ReadAll(io.LimitReader(resp.Body, a.preview.maxBytes))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", u.Redacted(), err)
		}
		for k, v := range openGraph(page, resp.Request.URL) {
			og[k] = v
		}
		if img, ok := og["og:image"].(string); ok {
			delete(og, "og:image")
			if iresp, err := a.preview.get(ctx, img); err == nil {
				a.addPreviewImage(ctx, og, iresp)
				iresp.Body.Close()
			}
		}
	case strings.HasPrefix(ctype, "image/"):
		// A link to an image: the image is the preview.
		a.addPreviewImage(ctx, og, resp)
	}
	body, err := json.Marshal(og)
	if err != nil {
		return nil, err
	}
	now := a.now()
	if err := a.db.PutURLPreview(ctx, u.String(), string(body), now.UnixMilli(), now.Add(previewCacheLifetime).UnixMilli()); err != nil {
		return nil, err
	}
	return body, nil
}

// addPreviewImage stores a fetched image as local media and describes it
// in og (og:image as its mxc:// URI, its type, size and dimensions).
// Anything wrong with it leaves og without an image.
func (a *API) addPreviewImage(ctx context.Context, og map[string]any, resp *http.Response) {
	ctype := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(mediaType(ctype), "image/") {
		return
	}
	if _, _, err := mime.ParseMediaType(ctype); err != nil {
		return
	}
	sum, size, err := a.storeStream(resp.Body, a.preview.maxBytes)
	if err != nil {
		return
	}
	now := a.nowMS()
	m := &storage.Media{Origin: a.serverName, MediaID: newMediaID(), SHA256: sum, Size: size, ContentType: ctype,
		CreatedTS: now, UploadedTS: now, LegacyFrozen: a.mc.FreezeUnauthenticated}
	if err := a.db.CreateMedia(ctx, m); err != nil {
		a.dropBlobIfUnused(sum)
		return
	}
	og["og:image"] = mxcURI(m.Origin, m.MediaID)
	og["og:image:type"] = mediaType(ctype)
	og["matrix:image:size"] = size
	if b, err := a.store.Open(sum); err == nil {
		if cfg, _, err := image.DecodeConfig(b); err == nil {
			og["og:image:width"], og["og:image:height"] = cfg.Width, cfg.Height
		}
		b.Close()
	}
	a.pregenerateThumbnails(m)
}

// get fetches a URL for a preview; the response body is bounded by the
// caller.
func (p *previewer) get(ctx context.Context, rawURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	// Some sites serve OpenGraph only to crawlers they recognise.
	req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; Myelin URL preview; +https://matrix.org)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5")
	req.Header.Set("Accept-Language", "en")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > p.maxBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("%s is %d bytes, more than media.url_preview_max_bytes", rawURL, resp.ContentLength)
	}
	return resp, nil
}
