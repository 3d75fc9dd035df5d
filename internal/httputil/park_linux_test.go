package httputil

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParkNoticesHangUp(t *testing.T) {
	ps := startParkServer(t, true)
	c, _ := ps.dial(t)
	io.WriteString(c, "GET /park/6 HTTP/1.1\r\nHost: x\r\n\r\n")
	p := ps.nextParked(t)
	gone := make(chan struct{})
	p.OnHangUp(func() { close(gone) })
	if p.Gone() {
		t.Fatal("gone before the client left")
	}
	c.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the client's hangup was not noticed")
	}
	if !p.Gone() {
		t.Fatal("Gone is false after the hangup")
	}
	p.Abandon()
	p.Respond(http.StatusOK, []byte(`{}`)) // too late: ignored
	if got := <-ps.observed; got != "/park/{id} GET " {
		t.Fatalf("observed %q", got)
	}
	if logs := ps.logs.String(); !strings.Contains(logs, "status=499") {
		t.Fatalf("access log %q", logs)
	}
}

// TestParkHangUpBeforeOnHangUp: a client that left before the owner
// asked to hear of it is reported once it does.
func TestParkHangUpBeforeOnHangUp(t *testing.T) {
	ps := startParkServer(t, true)
	c, _ := ps.dial(t)
	io.WriteString(c, "GET /park/7 HTTP/1.1\r\nHost: x\r\n\r\n")
	p := ps.nextParked(t)
	c.Close()
	time.Sleep(100 * time.Millisecond)
	gone := make(chan struct{})
	p.OnHangUp(func() { close(gone) })
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("a hangup before OnHangUp was not reported")
	}
	p.Abandon()
}
