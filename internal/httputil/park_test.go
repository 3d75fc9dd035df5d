package httputil

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// handBackListener feeds an http.Server the connections of answered
// parked requests (what internal/server does for the client API).
type handBackListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *handBackListener) handBack(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handBackListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handBackListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *handBackListener) Addr() net.Addr { return l.addr }

type parkServer struct {
	addr     string
	logs     *logBuffer
	observed chan string
	parked   chan *Parked
	declined chan bool
}

// startParkServer serves, behind Wrap: /park/{id} parks and sends the
// Parked on parked (or false on declined when Park declines); /plain
// answers at once. handBack false leaves Options.HandBack unset.
func startParkServer(t *testing.T, handBack bool) *parkServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &parkServer{addr: ln.Addr().String(), observed: make(chan string, 10),
		parked: make(chan *Parked, 10), declined: make(chan bool, 10)}
	hb := &handBackListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	router := NewRouter()
	router.HandleFunc("/park/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := Park(w, r)
		if !ok {
			ps.declined <- true
			WriteJSON(w, r, http.StatusOK, map[string]string{"parked": "no"})
			return
		}
		ps.parked <- p
	}).Methods("GET")
	router.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, r, http.StatusOK, map[string]string{"plain": "yes"})
	}).Methods("GET")
	logger, logs := newLogger()
	ps.logs = logs
	o := Options{Logger: logger, CORS: true, Observe: func(route, method string, status int, _ time.Duration) {
		ps.observed <- route + " " + method + " " + http.StatusText(status)
	}}
	if handBack {
		o.HandBack = hb.handBack
	}
	srv := &http.Server{Handler: Wrap(router, o)}
	go srv.Serve(ln)
	go srv.Serve(hb)
	t.Cleanup(func() { srv.Close() })
	return ps
}

func (ps *parkServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ps.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func (ps *parkServer) nextParked(t *testing.T) *Parked {
	t.Helper()
	select {
	case p := <-ps.parked:
		return p
	case <-ps.declined:
		t.Fatal("Park declined")
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the handler")
	}
	return nil
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("body %q: %v", data, err)
	}
	return resp, m
}

func TestParkAnswersLaterAndKeepsTheConnection(t *testing.T) {
	ps := startParkServer(t, true)
	c, br := ps.dial(t)
	io.WriteString(c, "GET /park/1 HTTP/1.1\r\nHost: x\r\nUser-Agent: parker\r\n\r\n")
	p := ps.nextParked(t)
	if p.Deadline().IsZero() || RequestID(p.Context()) == "" {
		t.Fatalf("deadline %v, request ID %q", p.Deadline(), RequestID(p.Context()))
	}
	time.Sleep(50 * time.Millisecond)
	p.Respond(http.StatusOK, []byte(`{"answer":42}`))

	resp, body := readResponse(t, br)
	if resp.StatusCode != 200 || body["answer"] != 42.0 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get(RequestIDHeader) != RequestID(p.Context()) || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Date") == "" || resp.Close {
		t.Fatalf("got %d %v, header %v, close %v", resp.StatusCode, body, resp.Header, resp.Close)
	}
	if got := <-ps.observed; got != "/park/{id} GET OK" {
		t.Fatalf("observed %q", got)
	}
	logs := ps.logs.String()
	if !strings.Contains(logs, "route=/park/{id}") || !strings.Contains(logs, "status=200") || !strings.Contains(logs, "user_agent=parker") {
		t.Fatalf("access log %q", logs)
	}

	// The connection went back to the server: the next request on it is
	// served as usual.
	io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResponse(t, br); resp.StatusCode != 200 || body["plain"] != "yes" {
		t.Fatalf("after the parked answer: %d %v", resp.StatusCode, body)
	}
}

func TestParkRespondError(t *testing.T) {
	ps := startParkServer(t, true)
	c, br := ps.dial(t)
	io.WriteString(c, "GET /park/2 HTTP/1.1\r\nHost: x\r\n\r\n")
	ps.nextParked(t).RespondError(LimitExceeded("slow down", 1500*time.Millisecond))
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusTooManyRequests || body["errcode"] != "M_LIMIT_EXCEEDED" || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("got %d %v, header %v", resp.StatusCode, body, resp.Header)
	}
}

func TestParkConnectionClose(t *testing.T) {
	ps := startParkServer(t, true)
	c, br := ps.dial(t)
	io.WriteString(c, "GET /park/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	ps.nextParked(t).Respond(http.StatusOK, []byte(`{}`))
	if resp, _ := readResponse(t, br); !resp.Close {
		t.Fatal("the answer to a Connection: close request does not say so")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection stayed open: %v", err)
	}
}

func TestParkKeepsPipelinedRequests(t *testing.T) {
	ps := startParkServer(t, true)
	c, br := ps.dial(t)
	// Both requests in one write: the second is read before the first is
	// answered, and must be served after it.
	io.WriteString(c, "GET /park/4 HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	ps.nextParked(t).Respond(http.StatusOK, []byte(`{"first":true}`))
	if _, body := readResponse(t, br); body["first"] != true {
		t.Fatalf("first answer %v", body)
	}
	if _, body := readResponse(t, br); body["plain"] != "yes" {
		t.Fatalf("second answer %v", body)
	}
}

func TestParkDeclinesWithoutHandBack(t *testing.T) {
	ps := startParkServer(t, false)
	c, br := ps.dial(t)
	io.WriteString(c, "GET /park/5 HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := readResponse(t, br); body["parked"] != "no" {
		t.Fatalf("got %v", body)
	}
}
