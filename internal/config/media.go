package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ThumbnailSize is one entry of media.thumbnail_sizes.
type ThumbnailSize struct {
	Width, Height int
	Method        string // "crop" or "scale"
}

// maxThumbnailSide bounds a configured thumbnail's width and height.
const maxThumbnailSide = 4096

// ParseThumbnailSizes parses "32x32 crop, 320x240 scale, ...".
func ParseThumbnailSizes(s string) ([]ThumbnailSize, error) {
	var out []ThumbnailSize
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		const fix = "list WIDTHxHEIGHT METHOD entries separated by commas, e.g. 32x32 crop, 320x240 scale"
		dims, method, ok := strings.Cut(item, " ")
		method = strings.TrimSpace(method)
		w, h, ok2 := strings.Cut(dims, "x")
		if !ok || !ok2 || (method != "crop" && method != "scale") {
			return nil, fmt.Errorf("%q is not a thumbnail size: %s", item, fix)
		}
		wi, err1 := strconv.Atoi(w)
		hi, err2 := strconv.Atoi(h)
		if err1 != nil || err2 != nil || wi < 1 || hi < 1 || wi > maxThumbnailSide || hi > maxThumbnailSide {
			return nil, fmt.Errorf("%q is not a thumbnail size (sides of 1 to %d pixels): %s", item, maxThumbnailSide, fix)
		}
		out = append(out, ThumbnailSize{Width: wi, Height: hi, Method: method})
	}
	return out, nil
}

// ThumbnailSizeList returns media.thumbnail_sizes parsed; Load has checked
// it, so a bad value (in a Config built by hand) gives the defaults.
func (c *Config) ThumbnailSizeList() []ThumbnailSize {
	sizes, err := ParseThumbnailSizes(c.Media.ThumbnailSizes)
	if err != nil {
		sizes, _ = ParseThumbnailSizes(DefaultThumbnailSizes)
	}
	return sizes
}

func checkThumbnailSizes(c *Config) error {
	_, err := ParseThumbnailSizes(c.Media.ThumbnailSizes)
	return err
}

// URLPreviewIPRanges returns the parsed media.url_preview_ip_range_denylist
// and allowlist.
func (c *Config) URLPreviewIPRanges() (deny, allow []netip.Prefix, err error) {
	if deny, err = ParseIPRanges(c.Media.URLPreviewIPRangeDenylist); err != nil {
		return nil, nil, fmt.Errorf("media.url_preview_ip_range_denylist: %w", err)
	}
	if allow, err = ParseIPRanges(c.Media.URLPreviewIPRangeAllowlist); err != nil {
		return nil, nil, fmt.Errorf("media.url_preview_ip_range_allowlist: %w", err)
	}
	return deny, allow, nil
}

// MediaDuration parses a media duration setting; empty (where allowed) or
// invalid is 0.
func MediaDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

func checkDuration(_ string, get func(*Config) string, emptyOK bool) func(*Config) error {
	return func(c *Config) error {
		v := get(c)
		if v == "" && emptyOK {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration: use a number with a unit, e.g. 24h or 90m", v)
		}
		return nil
	}
}

func checkPositive64(get func(*Config) int64) func(*Config) error {
	return func(c *Config) error {
		if get(c) < 1 {
			return errors.New("must be positive: use e.g. 104857600")
		}
		return nil
	}
}

func checkNonNegative64(get func(*Config) int64) func(*Config) error {
	return func(c *Config) error {
		if get(c) < 0 {
			return errors.New("must not be negative: use 0 for no limit")
		}
		return nil
	}
}
