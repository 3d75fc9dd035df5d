package fedclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/federation/internal/flight"
	"github.com/myelin-chat/myelin/federation/internal/lru"
	"github.com/myelin-chat/myelin/internal/config"
)

// The /.well-known/matrix/server step of discovery and its cache. The
// spec asks to cache responses, successful or not, to respect the cache
// headers within a maximum (48 hours recommended), to default to 24 hours,
// to cache errors for up to an hour and to back off exponentially on
// repeated failures. The figures below are Synapse's.
const (
	wellKnownDefaultTTL = 24 * time.Hour
	wellKnownMaxTTL     = 48 * time.Hour
	// wellKnownMinTTL keeps a server that says no-store or max-age=0 from
	// making us fetch on every request.
	wellKnownMinTTL = 5 * time.Minute
	// wellKnownInvalidTTL is for an answer that is not a delegation: 404,
	// other statuses, bad JSON, no or a bad m.server.
	wellKnownInvalidTTL = time.Hour
	// wellKnownDownTTL is the first wait after a failure to get an answer
	// at all (connection, TLS, timeout, 5xx), doubled for each failure in
	// a row up to wellKnownInvalidTTL: a server briefly down is asked again
	// soon, one that stays down rarely.
	wellKnownDownTTL = 2 * time.Minute

	wellKnownMaxBytes  = 50 * 1024 // Synapse's limit too
	wellKnownTimeout   = 10 * time.Second
	wellKnownRedirects = 5
	wellKnownCacheSize = 10000
)

// wellKnownEntry is a cached result for one host name.
type wellKnownEntry struct {
	delegated string // m.server; "" when there is no valid delegation
	expires   time.Time
	failures  int // failures in a row to get any answer
}

type wellKnownCache struct {
	mu      sync.Mutex
	entries *lru.Cache[string, wellKnownEntry]
	flights flight.Group[string, wellKnownEntry]
}

// wellKnown returns the m.server delegation of host, or "" when it has none
// (or the lookup failed: the caller goes on with SRV records).
func (d *discovery) wellKnown(ctx context.Context, host string) string {
	c := &d.wk
	c.mu.Lock()
	e, ok := c.entries.Get(host)
	c.mu.Unlock()
	if ok && d.now().Before(e.expires) {
		return e.delegated
	}
	prevFailures := e.failures
	e, err := c.flights.Do(ctx, host, func(ctx context.Context) (wellKnownEntry, error) {
		e := d.fetchWellKnown(ctx, host, prevFailures)
		c.mu.Lock()
		c.entries.Put(host, e)
		c.mu.Unlock()
		return e, nil
	})
	if err != nil { // the caller's context ended while waiting
		return ""
	}
	return e.delegated
}

// fetchWellKnown asks https://host/.well-known/matrix/server and returns
// the result to cache.
func (d *discovery) fetchWellKnown(ctx context.Context, host string, prevFailures int) wellKnownEntry {
	now := d.now()
	delegated, ttl, err := d.getWellKnown(ctx, host)
	if err == nil {
		d.logger.Debug("well-known delegation", "host", host, "m.server", delegated, "ttl", ttl)
		return wellKnownEntry{delegated: delegated, expires: now.Add(ttl)}
	}
	if errors.Is(err, errWellKnownDown) {
		failures := prevFailures + 1
		wait := wellKnownDownTTL << min(failures-1, 10)
		wait = min(wait, wellKnownInvalidTTL)
		d.logger.Debug("no well-known answer; using SRV records", "host", host, "err", err, "retry_in", wait)
		return wellKnownEntry{expires: now.Add(wait), failures: failures}
	}
	d.logger.Debug("no well-known delegation; using SRV records", "host", host, "reason", err)
	return wellKnownEntry{expires: now.Add(wellKnownInvalidTTL)}
}

// errTooManyRedirects ends redirect chains and loops.
var errTooManyRedirects = fmt.Errorf("more than %d redirects", wellKnownRedirects)

// errWellKnownDown marks failures to get any answer, as opposed to answers
// that are not a valid delegation.
var errWellKnownDown = errors.New("no answer")

// getWellKnown makes the request and checks the answer: a 200 whose body
// is a JSON object (whatever the Content-Type, as the spec says) with
// m.server a valid server name. ttl comes from the cache headers.
func (d *discovery) getWellKnown(ctx context.Context, host string) (delegated string, ttl time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, wellKnownTimeout)
	defer cancel()
	url := "https://" + host
	if d.wellKnownPort != 443 {
		url += ":" + strconv.Itoa(d.wellKnownPort)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("User-Agent", d.userAgent)
	resp, err := d.wellKnownClient.Do(req)
	if errors.Is(err, errTooManyRedirects) {
		return "", 0, err // a redirect loop is a bad answer, not an outage
	}
	if err != nil {
		return "", 0, fmt.Errorf("%w: %v", errWellKnownDown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		return "", 0, fmt.Errorf("%w: status %d", errWellKnownDown, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, wellKnownMaxBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("%w: reading the body: %v", errWellKnownDown, err)
	}
	if len(body) > wellKnownMaxBytes {
		return "", 0, fmt.Errorf("body larger than %d bytes", wellKnownMaxBytes)
	}
	var wk struct {
		Server *string `json:"m.server"`
	}
	if err := json.Unmarshal(body, &wk); err != nil {
		return "", 0, fmt.Errorf("body is not a JSON object with a string m.server: %v", err)
	}
	if wk.Server == nil {
		return "", 0, errors.New("no m.server in the body")
	}
	if err := config.ValidServerName(*wk.Server); err != nil {
		return "", 0, fmt.Errorf("m.server %q is not a valid server name: %v", *wk.Server, err)
	}
	return *wk.Server, cacheTTL(resp.Header, d.now()), nil
}

// cacheTTL is how long to keep a valid answer: Cache-Control's no-store
// or max-age, else Expires, else 24 hours with up to 10% jitter (so that
// the entries fetched together do not all expire together), bounded to
// [wellKnownMinTTL, wellKnownMaxTTL].
func cacheTTL(h http.Header, now time.Time) time.Duration {
	ttl, ok := headerTTL(h, now)
	if !ok {
		return wellKnownDefaultTTL + rand.N(wellKnownDefaultTTL/10)
	}
	return max(wellKnownMinTTL, min(ttl, wellKnownMaxTTL))
}

func headerTTL(h http.Header, now time.Time) (time.Duration, bool) {
	maxAge := -1
	for _, v := range h.Values("Cache-Control") {
		for _, directive := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store":
				return 0, true
			case "max-age":
				if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n >= 0 {
					maxAge = n
				}
			}
		}
	}
	if maxAge >= 0 {
		return time.Duration(maxAge) * time.Second, true
	}
	if exp := h.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil {
			return 0, true // RFC 9111: an invalid Expires means already expired
		}
		return t.Sub(now), true
	}
	return 0, false
}

// newWellKnownClient is the HTTP client for /.well-known: ordinary HTTPS
// with the outbound TLS configuration and certificate checks for the host
// name, redirects followed up to a few hops (which also ends loops), host
// names resolved through the discovery's resolver.
func (d *discovery) newWellKnownClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.dialPlain,
		TLSClientConfig:       d.tls.Clone(),
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   wellKnownTimeout,
		ResponseHeaderTimeout: wellKnownTimeout,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   wellKnownTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= wellKnownRedirects {
				return errTooManyRedirects
			}
			return nil
		},
	}
}
