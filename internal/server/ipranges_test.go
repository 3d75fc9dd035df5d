package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// A server with the default federation_ip_range_denylist, asked by anyone
// (the notary endpoints need no signature) for the keys of servers named
// after private addresses, such as its own database port, answers without
// ever connecting there.
func TestNotaryRefusesPrivateAddresses(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.FederationIPRangeAllowlist = "" // the default, unlike servertest's
	}))[0]

	// The listener stands for a private service, say PostgreSQL. It
	// counts each connection before closing it, so a connection attempt
	// is counted before the server's request can fail.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	targets := []string{
		"127.0.0.1:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"localhost:" + port, // a host name resolving to loopback
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	answer := func(req *http.Request) []json.RawMessage {
		t.Helper()
		resp, err := s.FedClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			ServerKeys []json.RawMessage `json:"server_keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d, %v", req.Method, req.URL.Path, resp.StatusCode, err)
		}
		return body.ServerKeys
	}
	// An unreachable server is left out of the answer, as the spec says.
	for _, target := range targets {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.FederationURL+"/_matrix/key/v2/query/"+url.PathEscape(target), nil)
		if keys := answer(req); len(keys) != 0 {
			t.Errorf("GET for %s: %d key responses", target, len(keys))
		}
	}
	post := `{"server_keys":{"` + strings.Join(targets, `":{},"`) + `":{}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.FederationURL+"/_matrix/key/v2/query", strings.NewReader(post))
	req.Header.Set("Content-Type", "application/json")
	if keys := answer(req); len(keys) != 0 {
		t.Errorf("POST: %d key responses", len(keys))
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("asked as a notary, the server connected %d times to the private service", n)
	}

	// The key store and both outbound clients refuse the address too.
	if _, err := s.ServerKeys().VerifyKey(ctx, targets[0], "ed25519:a", time.Now().UnixMilli()); err == nil {
		t.Error("the key store got a key from a private address")
	}
	if _, err := s.SignedFederationClient().Do(ctx, fedclient.Request{Method: "GET", Destination: targets[0], Path: "/_matrix/key/v2/server"}); !errors.Is(err, fedclient.ErrAddressRefused) {
		t.Errorf("signed client: %v, want refused", err)
	}
	if resp, err := s.FederationClient().Get("https://" + targets[0] + "/"); !errors.Is(err, fedclient.ErrAddressRefused) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("plain client: %v, want refused", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the private service accepted %d connections from the key store and clients", n)
	}
}
