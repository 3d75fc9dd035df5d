package mediaapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// errAddressRefused is returned (wrapped) when an outbound connection of
// the media repository (a URL preview, a remote media redirect) would
// reach an address its denylist refuses.
var errAddressRefused = errors.New("address refused")

// maxRedirects bounds the redirects followed by one fetch.
const maxRedirects = 5

// newFilteredHTTPClient is an HTTP client for URLs that others choose:
// every address it connects to, after DNS resolution and on every
// redirect, is checked with check in the dialer's Control (so DNS
// rebinding cannot get around it), no proxy is used, and at most
// maxRedirects http(s) redirects are followed.
func newFilteredHTTPClient(check func(netip.Addr) error, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %q is not an IP address and port", errAddressRefused, address)
			}
			if err := check(ap.Addr()); err != nil {
				return fmt.Errorf("%w: %v", errAddressRefused, err)
			}
			return nil
		}}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		},
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s: URL", req.URL.Scheme)
			}
			return nil
		},
	}
}
