package main

// The media scenario: upload and download throughput of large files, and
// the time to the first thumbnail of a 12-megapixel photo and to the same
// thumbnail again (from the cache).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// mediaThroughput uploads rounds files of sizeMiB each and downloads each
// back, then thumbnails photos distinct 4000×3000 JPEGs.
func (b *bench) mediaThroughput(ctx context.Context, sizeMiB, rounds, photos int) (figures, error) {
	us, err := b.users(ctx, 1)
	if err != nil {
		return nil, err
	}
	u := us[0]
	data := make([]byte, sizeMiB<<20)
	rand.Read(data)

	var up, down []time.Duration
	var upTotal, downTotal time.Duration
	for i := range rounds {
		data[0] = byte(i) // distinct content each round: no deduplication
		t0 := time.Now()
		mxc, err := b.c.upload(ctx, u, "application/octet-stream", data)
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		d := time.Since(t0)
		up, upTotal = append(up, d), upTotal+d
		t0 = time.Now()
		n, err := b.c.download(ctx, u, "/_matrix/client/v1/media/download/"+strings.TrimPrefix(mxc, "mxc://"))
		if err != nil {
			return nil, fmt.Errorf("download: %w", err)
		}
		if n != int64(len(data)) {
			return nil, fmt.Errorf("download: %d bytes, want %d", n, len(data))
		}
		d = time.Since(t0)
		down, downTotal = append(down, d), downTotal+d
	}
	mb := float64(len(data)) * float64(rounds) / 1e6
	f := figures{
		"file_mib": sizeMiB, "rounds": rounds,
		"upload_mb_per_s":   mb / upTotal.Seconds(),
		"download_mb_per_s": mb / downTotal.Seconds(),
		"upload_ms_p50":     percentile(up, 50), "download_ms_p50": percentile(down, 50),
	}

	var first, cached []time.Duration
	var photoBytes int
	for i := range photos {
		photo, err := photoJPEG(uint64(i))
		if err != nil {
			return nil, err
		}
		photoBytes = len(photo)
		mxc, err := b.c.upload(ctx, u, "image/jpeg", photo)
		if err != nil {
			return nil, fmt.Errorf("upload photo: %w", err)
		}
		path := "/_matrix/client/v1/media/thumbnail/" + strings.TrimPrefix(mxc, "mxc://") + "?width=320&height=240&method=scale"
		t0 := time.Now()
		if _, err := b.c.download(ctx, u, path); err != nil {
			return nil, fmt.Errorf("thumbnail: %w", err)
		}
		first = append(first, time.Since(t0))
		for range 20 {
			t0 := time.Now()
			if _, err := b.c.download(ctx, u, path); err != nil {
				return nil, fmt.Errorf("thumbnail: %w", err)
			}
			cached = append(cached, time.Since(t0))
		}
	}
	if photos > 0 {
		f["photo_bytes"] = photoBytes
		f["thumbnail_12mp_first_ms_p50"] = percentile(first, 50)
		f["thumbnail_12mp_first_ms_max"] = percentile(first, 100)
		f["thumbnail_cached_ms_p50"] = percentile(cached, 50)
		f["thumbnail_cached_ms_p99"] = percentile(cached, 99)
	}
	return f, nil
}

// photoJPEG makes a 4000×3000 JPEG with gradients and noise, about the
// size and entropy of a phone photo.
func photoJPEG(seed uint64) ([]byte, error) {
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	r := mrand.New(mrand.NewPCG(seed, 7))
	for y := 0; y < 3000; y++ {
		for x := 0; x < 4000; x++ {
			img.Y[y*img.YStride+x] = uint8((x/16+y/12+int(seed))%200 + r.IntN(40))
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = uint8(100+i%50), uint8(140-i%40)
	}
	var buf bytes.Buffer
	err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	return buf.Bytes(), err
}

// upload posts data to the media repository and returns its mxc:// URI.
func (c *client) upload(ctx context.Context, u *user, contentType string, data []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/_matrix/media/v3/upload", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+u.Token)
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &apiError{Status: resp.StatusCode, Body: string(body)}
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", err
	}
	return out.ContentURI, nil
}

// download GETs path and returns the size of the body, read and dropped.
func (c *client) download(ctx context.Context, u *user, path string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, &apiError{Status: resp.StatusCode, Body: string(body)}
	}
	return io.Copy(io.Discard, resp.Body)
}
