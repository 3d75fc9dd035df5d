// Package fedclient is the outbound side of the Server-Server API: it finds
// other servers (server-server-api "Resolving server names": IP literals,
// explicit ports, /.well-known/matrix/server delegation with its cache,
// _matrix-fed._tcp and the deprecated _matrix._tcp SRV records, port 8448),
// connects to them over TLS checked against the right name with the
// server's outbound trust (system roots plus federation_trust_ca), never
// to the private and reserved addresses of federation_ip_range_denylist
// (IPFilter, checked on every address connected to), and sends requests
// signed with the X-Matrix Authorization header ("Request
// Authentication"), each with a deadline and a bound on the response size.
// Errors the remote answers with come back as *Error, with the Matrix
// errcode when there is one.
package fedclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/federation/fedauth"
	"github.com/myelin-chat/myelin/internal/keys"
)

const (
	// DefaultTimeout is a request's deadline when neither the context nor
	// the Request sets a shorter one (Synapse's default too).
	DefaultTimeout = 60 * time.Second
	// DefaultMaxResponseBytes bounds a response body unless the Request
	// allows more (a send_join response in a large room needs more).
	DefaultMaxResponseBytes = 10 << 20
	// maxErrorBodyBytes bounds what is read of an error response.
	maxErrorBodyBytes = 64 << 10
	// maxRetryAfter bounds the wait a remote can ask for.
	maxRetryAfter = time.Hour
)

// ErrResponseTooLarge is returned (wrapped) for a response body over its
// limit.
var ErrResponseTooLarge = errors.New("response too large")

// Config is what a Client is built from.
type Config struct {
	// ServerName and Keys sign every request (the current key).
	ServerName string
	Keys       *keys.Ring
	// TLS is the outbound TLS configuration (tlsutil.OutboundConfig); its
	// ServerName is set per connection.
	TLS *tls.Config
	// Resolver looks up SRV and address records; nil means
	// net.DefaultResolver.
	Resolver Resolver
	// Timeout is the default deadline of a request; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes is the default response size limit; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// UserAgent is sent with every request, e.g. "Myelin/1.0".
	UserAgent string
	Logger    *slog.Logger
	// Now is the clock of the well-known cache; nil means time.Now.
	Now func() time.Time
	// IPFilter says which addresses may be connected to (config's
	// federation_ip_range_denylist and allowlist); nil means
	// DefaultIPFilter, which refuses private and reserved ranges.
	IPFilter *IPFilter
}

// Client sends requests to other servers. It is safe for concurrent use.
type Client struct {
	serverName  string
	keys        *keys.Ring
	d           *discovery
	transport   *http.Transport
	http        *http.Client
	timeout     time.Duration
	maxResponse int64
	userAgent   string
}

// New builds a client.
func New(c Config) (*Client, error) {
	if c.ServerName == "" || c.Keys == nil || c.TLS == nil {
		return nil, errors.New("fedclient: ServerName, Keys and TLS are required")
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UserAgent == "" {
		c.UserAgent = "Myelin"
	}
	if c.IPFilter == nil {
		c.IPFilter = DefaultIPFilter()
	}
	d := newDiscovery(c.Resolver, c.TLS, c.IPFilter, c.Logger.With("component", "fedclient"), c.Now, c.UserAgent)
	tr := &http.Transport{
		Proxy:             nil, // federation goes direct, as in Synapse
		DialTLSContext:    d.dialTLS,
		ForceAttemptHTTP2: true,
		// The deadline of each request bounds the wait for headers and
		// body; these bound what is shared.
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 8,
	}
	cl := &Client{
		serverName: c.ServerName,
		keys:       c.Keys,
		d:          d,
		transport:  tr,
		http: &http.Client{
			Transport: tr,
			// Federation endpoints do not redirect; a 3xx is an answer
			// like any other non-2xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:     c.Timeout,
		maxResponse: c.MaxResponseBytes,
		userAgent:   c.UserAgent,
	}
	if cl.timeout <= 0 {
		cl.timeout = DefaultTimeout
	}
	if cl.maxResponse <= 0 {
		cl.maxResponse = DefaultMaxResponseBytes
	}
	return cl, nil
}

// ServerName is the name requests are signed as.
func (c *Client) ServerName() string { return c.serverName }

// Resolve runs server discovery for serverName, for diagnostics: requests
// do it themselves.
func (c *Client) Resolve(ctx context.Context, serverName string) (*Resolution, error) {
	res, _, err := c.d.resolve(ctx, serverName)
	return res, err
}

// CloseIdleConnections closes the pooled connections not in use.
func (c *Client) CloseIdleConnections() {
	c.transport.CloseIdleConnections()
	c.d.wellKnownClient.CloseIdleConnections()
}

// Request is one request to another server.
type Request struct {
	Method      string
	Destination string // the server name
	// Path is the request target from "/_matrix/...", with the path
	// segments escaped and the query string, exactly as it goes on the
	// request line (and into the signature).
	Path string
	// Body is the JSON body, or nil for none.
	Body []byte
	// Timeout is this request's deadline (the context's, if sooner,
	// wins); 0 means the client's default.
	Timeout time.Duration
	// MaxResponseBytes bounds the response body; 0 means the client's
	// default.
	MaxResponseBytes int64
}

// Response is a successful (2xx) answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Error is an answer other than 2xx. Code and Message are the Matrix error
// ({"errcode","error"}) when the body is one, else empty.
type Error struct {
	Destination string
	Method      string
	Path        string
	Status      int
	Code        string
	Message     string
	// RetryAfter is how long the remote asked us to wait (a 429's
	// Retry-After header or retry_after_ms), 0 when it did not say.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	what := fmt.Sprintf("%s %s on %s: HTTP %d", e.Method, e.Path, e.Destination, e.Status)
	if e.Code != "" {
		return what + " " + e.Code + ": " + e.Message
	}
	return what
}

// Do sends a signed request and returns the answer if it is a 2xx. Any
// other status is an *Error; failing to reach the server, a deadline or a
// body over the limit is another error, naming the destination.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
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
	defer cancel()

	u, err := url.Parse("https://" + poolHost(r.Destination) + r.Path)
	if err != nil {
		return nil, fail(fmt.Errorf("bad path: %w", err))
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, fail(err)
	}
	keyID, key := c.keys.Current()
	auth, err := fedauth.Sign(r.Method, req.URL.RequestURI(), c.serverName, r.Destination, r.Body, keyID, key)
	if err != nil {
		return nil, fail(err)
	}
	// The Host header comes from discovery: the server name, or the
	// delegated name.
	rt, err := c.d.route(ctx, r.Destination)
	if err != nil {
		return nil, fail(err)
	}
	req.Host = rt.host
	req.Header.Set("Authorization", auth.String())
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the pool host, which says nothing
		}
		return nil, fail(err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.errorFrom(r, resp)
	}
	limit := r.MaxResponseBytes
	if limit <= 0 {
		limit = c.maxResponse
	}
	if resp.ContentLength > limit {
		return nil, fail(fmt.Errorf("%w: %d bytes, the limit is %d", ErrResponseTooLarge, resp.ContentLength, limit))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fail(fmt.Errorf("reading the response: %w", err))
	}
	if int64(len(data)) > limit {
		return nil, fail(fmt.Errorf("%w: over the limit of %d bytes", ErrResponseTooLarge, limit))
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// errorFrom builds the *Error of a non-2xx answer.
func (c *Client) errorFrom(r Request, resp *http.Response) *Error {
	e := &Error{Destination: r.Destination, Method: r.Method, Path: r.Path, Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	var me struct {
		Code         string `json:"errcode"`
		Message      string `json:"error"`
		RetryAfterMS int64  `json:"retry_after_ms"`
	}
	if json.Unmarshal(data, &me) == nil && me.Code != "" {
		e.Code, e.Message = truncate(me.Code, 128), truncate(me.Message, 1024)
		if me.RetryAfterMS > 0 {
			e.RetryAfter = time.Duration(min(me.RetryAfterMS, maxRetryAfter.Milliseconds())) * time.Millisecond
		}
	}
	if secs, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// DoJSON sends body (encoded as JSON; nil for none) and decodes a
// successful answer into out (unless out is nil). A body that is not the
// JSON expected is an error naming the destination.
func (c *Client) DoJSON(ctx context.Context, method, destination, path string, body, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s on %s: encoding the body: %w", method, path, destination, err)
		}
	}
	resp, err := c.Do(ctx, Request{Method: method, Destination: destination, Path: path, Body: raw})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("%s %s on %s: the answer is not the JSON expected: %w", method, path, destination, err)
	}
	return nil
}
