package fedclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/myelin-chat/myelin/federation/fedauth"
)

// StreamResponse is a successful (2xx) answer whose body is read by the
// caller, for bodies too large to hold in memory (media). The caller must
// close Body; the request's deadline lasts until then.
type StreamResponse struct {
	Status int
	Header http.Header
	// Body is the response body, bounded: reading past the request's
	// MaxResponseBytes fails with an error wrapping ErrResponseTooLarge.
	Body io.ReadCloser
}

// Stream sends a signed GET-style request like Do, but hands the body to
// the caller instead of reading it. r.MaxResponseBytes bounds the body (0
// means the client's default); r.Timeout bounds the whole exchange,
// reading the body included.
func (c *Client) Stream(ctx context.Context, r Request) (*StreamResponse, error) {
	fail := func(err error) error {
		return fmt.Errorf("%s %s on %s: %w", r.Method, r.Path, r.Destination, err)
	}
	if !strings.HasPrefix(r.Path, "/") {
		return nil, fail(errors.New("the path must start with /"))
	}
	if _, _, err := splitServerName(r.Destination); err != nil {
		return nil, fail(err)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = c.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	ok := false
	defer func() {
		if !ok {
			cancel()
		}
	}()
	u, err := url.Parse("https://" + poolHost(r.Destination) + r.Path)
	if err != nil {
		return nil, fail(fmt.Errorf("bad path: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return nil, fail(err)
	}
	keyID, key := c.keys.Current()
	auth, err := fedauth.Sign(r.Method, req.URL.RequestURI(), c.serverName, r.Destination, nil, keyID, key)
	if err != nil {
		return nil, fail(err)
	}
	rt, err := c.d.route(ctx, r.Destination)
	if err != nil {
		return nil, fail(err)
	}
	req.Host = rt.host
	req.Header.Set("Authorization", auth.String())
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fail(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, c.errorFrom(r, resp)
	}
	limit := r.MaxResponseBytes
	if limit <= 0 {
		limit = c.maxResponse
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, fail(fmt.Errorf("%w: %d bytes, the limit is %d", ErrResponseTooLarge, resp.ContentLength, limit))
	}
	ok = true
	return &StreamResponse{Status: resp.StatusCode, Header: resp.Header,
		Body: &limitedBody{r: resp.Body, left: limit, limit: limit, cancel: cancel, fail: fail}}, nil
}

// limitedBody fails a body that grows past its limit and ends the
// request's context when closed.
type limitedBody struct {
	r      io.ReadCloser
	left   int64
	limit  int64
	cancel context.CancelFunc
	fail   func(error) error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.fail(fmt.Errorf("%w: over the limit of %d bytes", ErrResponseTooLarge, b.limit))
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, b.fail(fmt.Errorf("%w: over the limit of %d bytes", ErrResponseTooLarge, b.limit))
	}
	return n, err
}

func (b *limitedBody) Close() error {
	err := b.r.Close()
	b.cancel()
	return err
}
