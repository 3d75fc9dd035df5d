package mediaapi

// Thumbnails (content-repo "Thumbnails", GET .../thumbnail/{serverName}/
// {mediaId}). A request's size is mapped to one of the configured sizes
// (media.thumbnail_sizes) as Synapse does, so an item has few thumbnails
// whatever clients ask for; each is made once, stored as a blob and
// recorded in media_thumbnails.

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// pregenPollInterval is how often a request waiting for the thumbnails
// made at upload looks for its own.
const pregenPollInterval = 10 * time.Millisecond

// maxThumbnailRequestSide bounds the width and height a request may ask.
const maxThumbnailRequestSide = 10000

type thumbParams struct {
	Width, Height int
	Method        string
	Animated      bool
}

func parseThumbParams(r *http.Request) (thumbParams, error) {
	q := r.URL.Query()
	var p thumbParams
	for _, f := range []struct {
		name string
		dst  *int
	}{{"width", &p.Width}, {"height", &p.Height}} {
		v := q.Get(f.name)
		if v == "" {
			return p, httputil.MissingParam(f.name + " is required")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxThumbnailRequestSide {
			return p, httputil.InvalidParam(fmt.Sprintf("%s must be an integer from 1 to %d", f.name, maxThumbnailRequestSide))
		}
		*f.dst = n
	}
	switch p.Method = q.Get("method"); p.Method {
	case "":
		p.Method = "scale"
	case "crop", "scale":
	default:
		return p, httputil.InvalidParam("method must be crop or scale")
	}
	switch q.Get("animated") {
	case "", "false":
	case "true":
		p.Animated = true
	default:
		return p, httputil.InvalidParam("animated must be true or false")
	}
	return p, nil
}

func (a *API) authedThumbnail(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	a.thumbnail(w, r, authenticated)
}

func (a *API) legacyThumbnail(w http.ResponseWriter, r *http.Request) {
	a.optionalAuth(func(w http.ResponseWriter, r *http.Request) { a.thumbnail(w, r, legacy) })(w, r)
}

func (a *API) thumbnail(w http.ResponseWriter, r *http.Request, how access) {
	origin, mediaID, err := mediaRef(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	p, err := parseThumbParams(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	m, err := a.resolve(r, origin, mediaID, how)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	t, err := a.thumbnailOf(r.Context(), m, p)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.serveBlob(w, r, t.SHA256, t.ContentType, thumbnailFileName(t.ContentType))
}

func thumbnailFileName(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return "thumbnail.jpg"
	case "image/gif":
		return "thumbnail.gif"
	case "image/webp":
		return "thumbnail.webp"
	}
	return "thumbnail.png"
}

// pickSize maps a requested size to a configured one: the smallest of the
// same method at least as large, else the smallest of either method at
// least as large, else the largest (Synapse's choice when thumbnails are
// not made at any size asked).
func pickSize(sizes []config.ThumbnailSize, w, h int, method string) config.ThumbnailSize {
	best := -1
	better := func(i int, sameMethodOnly bool) {
		s := sizes[i]
		if s.Width < w || s.Height < h || sameMethodOnly && s.Method != method {
			return
		}
		if best < 0 || s.Width*s.Height < sizes[best].Width*sizes[best].Height {
			best = i
		}
	}
	for i := range sizes {
		better(i, true)
	}
	if best < 0 {
		for i := range sizes {
			better(i, false)
		}
	}
	if best < 0 {
		for i, s := range sizes {
			if best < 0 || s.Width*s.Height > sizes[best].Width*sizes[best].Height {
				best = i
			}
		}
	}
	if best < 0 {
		return config.ThumbnailSize{Width: w, Height: h, Method: method}
	}
	return sizes[best]
}

// thumbnailOf returns the stored thumbnail of m for p, making it if need
// be (once, however many ask at the same time).
func (a *API) thumbnailOf(ctx context.Context, m *storage.Media, p thumbParams) (*storage.MediaThumbnail, error) {
	ctype := mediaType(m.ContentType)
	if _, ok := thumbnailable[ctype]; !ok {
		return nil, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "cannot generate thumbnails for content of type "+ctype)
	}
	size := pickSize(a.sizes, p.Width, p.Height, p.Method)
	animated := p.Animated && ctype == "image/gif"
	t, err := a.db.GetMediaThumbnail(ctx, m.Origin, m.MediaID, size.Width, size.Height, size.Method, animated)
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	// Made at upload right now: wait for that rather than decode the
	// image a second time.
	if done := a.pregenerating(m); done != nil && !animated {
		// Each size is stored as soon as it is made: look for this one
		// now and then rather than wait for them all.
		tick := time.NewTicker(pregenPollInterval)
		defer tick.Stop()
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-tick.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if t, err := a.db.GetMediaThumbnail(ctx, m.Origin, m.MediaID, size.Width, size.Height, size.Method, animated); err == nil {
				return t, nil
			}
		}
		if t, err := a.db.GetMediaThumbnail(ctx, m.Origin, m.MediaID, size.Width, size.Height, size.Method, animated); err == nil {
			return t, nil
		}
	}
	key := fmt.Sprintf("%s/%s/%dx%d/%s/%t", m.Origin, m.MediaID, size.Width, size.Height, size.Method, animated)
	t, err = a.thumbFlights.Do(key, func() (*storage.MediaThumbnail, error) {
		ts, err := a.makeThumbnails(ctx, m, []config.ThumbnailSize{size}, animated)
		if err != nil {
			return nil, err
		}
		return ts[0], nil
	})
	switch {
	case errors.Is(err, errTooManyPixels):
		status := http.StatusRequestEntityTooLarge
		if !a.isLocal(m.Origin) {
			status = http.StatusBadGateway
		}
		return nil, httputil.NewError(status, httputil.CodeTooLarge, "the image is too large to thumbnail")
	case errors.Is(err, errNotImage):
		return nil, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "cannot generate a thumbnail: the content is not an image this server can read")
	}
	return t, err
}

// makeThumbnails makes and stores m's thumbnails at sizes, decoding the
// image once.
func (a *API) makeThumbnails(ctx context.Context, m *storage.Media, sizes []config.ThumbnailSize, animated bool) ([]*storage.MediaThumbnail, error) {
	select {
	case a.thumbSlots <- struct{}{}:
		defer func() { <-a.thumbSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b, err := a.store.Open(m.SHA256)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	info, err := probeImage(b, a.mc.MaxThumbnailPixels)
	if err != nil {
		return nil, err
	}
	rewind := func() error { _, err := b.Seek(0, io.SeekStart); return err }

	var anim *gif.GIF
	if animated && info.Format == "gif" {
		if err := rewind(); err != nil {
			return nil, err
		}
		frames, pixels, err := gifFrames(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotImage, err)
		}
		if pixels > a.mc.MaxThumbnailPixels {
			return nil, fmt.Errorf("%w: its %d frames hold %d pixels", errTooManyPixels, frames, pixels)
		}
		if frames > 1 {
			if err := rewind(); err != nil {
				return nil, err
			}
			if anim, err = gif.DecodeAll(b); err != nil {
				return nil, fmt.Errorf("%w: %v", errNotImage, err)
			}
		}
	}
	var img image.Image
	if anim == nil {
		if err := rewind(); err != nil {
			return nil, err
		}
		// image.Decode reads a GIF's first frame only.
		if img, _, err = image.Decode(b); err != nil {
			return nil, fmt.Errorf("%w: %v", errNotImage, err)
		}
	}

	// Shrink the image once by the largest whole factor every size
	// allows; each size is then made from that smaller image.
	base, baseK := img, 1
	if img != nil {
		baseK = sharedShrinkFactor(info.Width, info.Height, sizes)
		if baseK >= 2 {
			base = boxShrink(img, img.Bounds(), baseK)
		}
	}
	out := make([]*storage.MediaThumbnail, 0, len(sizes))
	for _, size := range sizes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		plan := planThumbnail(info.Width, info.Height, size.Width, size.Height, size.Method)
		t := &storage.MediaThumbnail{Origin: m.Origin, MediaID: m.MediaID, Width: size.Width, Height: size.Height,
			Method: size.Method, Animated: animated, CreatedTS: a.nowMS()}
		if have, err := a.db.GetMediaThumbnail(ctx, m.Origin, m.MediaID, size.Width, size.Height, size.Method, animated); err == nil {
			out = append(out, have)
			continue
		}
		whole := plan.Width == info.Width && plan.Height == info.Height && plan.Src == image.Rect(0, 0, info.Width, info.Height)
		if whole && (info.Format != "gif" || animated) {
			// No smaller than the box: the original is the thumbnail (the
			// spec asks for it), sharing its blob.
			t.SHA256, t.Size, t.ContentType = m.SHA256, m.Size, "image/"+info.Format
		} else if err := a.encodeAndStore(t, plan.shrunk(baseK), base, anim, info.Format); err != nil {
			return nil, err
		}
		if err := a.db.AddMediaThumbnail(ctx, t); err != nil {
			return nil, err
		}
		// Another process may have stored the same thumbnail meanwhile:
		// its row wins, and this blob goes if nothing else uses it.
		stored, err := a.db.GetMediaThumbnail(ctx, m.Origin, m.MediaID, size.Width, size.Height, size.Method, animated)
		if err != nil {
			return nil, err
		}
		if stored.SHA256 != t.SHA256 {
			a.dropBlobIfUnused(t.SHA256)
		}
		out = append(out, stored)
	}
	return out, nil
}

func (a *API) encodeAndStore(t *storage.MediaThumbnail, plan thumbTarget, img image.Image, anim *gif.GIF, format string) error {
	bw, err := a.store.Create()
	if err != nil {
		return err
	}
	if anim != nil {
		err = gif.EncodeAll(bw, resizeAnimatedGIF(anim, plan))
		t.ContentType = "image/gif"
	} else {
		t.ContentType, err = encodeThumbnail(bw, resize(img, plan), thumbnailAsJPEG(format, img))
	}
	if err != nil {
		bw.Abort()
		return err
	}
	t.SHA256, t.Size, err = bw.Commit()
	return err
}

// pregenerateThumbnails makes an uploaded image's thumbnails at every
// configured size in the background, so the first viewers find them
// ready.
func (a *API) pregenerateThumbnails(m *storage.Media) {
	if _, ok := thumbnailable[mediaType(m.ContentType)]; !ok || len(a.sizes) == 0 {
		return
	}
	key := m.Origin + "/" + m.MediaID
	done := make(chan struct{})
	a.pregenMu.Lock()
	if a.pregen == nil {
		a.pregen = map[string]chan struct{}{}
	}
	a.pregen[key] = done
	a.pregenMu.Unlock()
	a.bg.Go(func() {
		ctx, cancel := context.WithTimeout(a.bgCtx, 2*TransferTimeout)
		defer cancel()
		defer func() {
			a.pregenMu.Lock()
			delete(a.pregen, key)
			a.pregenMu.Unlock()
			close(done)
		}()
		if _, err := a.makeThumbnails(ctx, m, a.sizes, false); err != nil && ctx.Err() == nil &&
			!errors.Is(err, errNotImage) && !errors.Is(err, errTooManyPixels) {
			a.logger.Warn("cannot make thumbnails", "media", mxcURI(m.Origin, m.MediaID), "err", err)
		}
	})
}

// pregenerating returns a channel closed when the thumbnails being made
// at upload for m are done, or nil if none are being made.
func (a *API) pregenerating(m *storage.Media) <-chan struct{} {
	a.pregenMu.Lock()
	defer a.pregenMu.Unlock()
	if ch, ok := a.pregen[m.Origin+"/"+m.MediaID]; ok {
		return ch
	}
	return nil
}
