package fedclient

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Stream signs like Do, hands the body over unread, enforces the size
// limit while it is read, and turns non-2xx answers into *Error.
func TestStream(t *testing.T) {
	ca := testCA(t)
	c, ring := newTestClient(t, ca, nil)
	pub := func() ed25519.PublicKey { _, k := ring.Current(); return k.Public().(ed25519.PublicKey) }
	var rm remote
	srv := tlsServer(t, ca, http.NotFoundHandler(), "127.0.0.1")
	dest := srv.Listener.Addr().String()
	srv.Config.Handler = rm.handler(pub, dest, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/media":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "5000")
			fmt.Fprint(w, strings.Repeat("m", 5000))
		case "/chunked":
			for range 30 {
				w.Write(make([]byte, 100))
				w.(http.Flusher).Flush()
			}
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"no"}`)
		}
	})
	ctx := context.Background()
	resp, err := c.Stream(ctx, Request{Method: "GET", Destination: dest, Path: "/media", MaxResponseBytes: 5000})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 5000 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("%d bytes, %v, %v", len(body), err, resp.Header)
	}
	if s := rm.last(t); s.authErr != nil {
		t.Fatalf("the signature does not verify: %v", s.authErr)
	}
	if _, err := c.Stream(ctx, Request{Method: "GET", Destination: dest, Path: "/media", MaxResponseBytes: 4999}); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("declared length over the limit: %v", err)
	}
	resp, err = c.Stream(ctx, Request{Method: "GET", Destination: dest, Path: "/chunked", MaxResponseBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("streamed body over the limit: %v", err)
	}
	var fe *Error
	if _, err := c.Stream(ctx, Request{Method: "GET", Destination: dest, Path: "/nope"}); !errors.As(err, &fe) || fe.Status != 404 || fe.Code != "M_UNRECOGNIZED" {
		t.Errorf("error answer: %#v", err)
	}
}
