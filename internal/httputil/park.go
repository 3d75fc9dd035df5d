package httputil

// Parking a request: a handler that has nothing to answer yet and will
// wait long for it (a /sync long-poll waits up to a minute) takes its
// connection away from net/http and returns. While it waits, the request
// then costs a few hundred bytes instead of net/http's per-request state:
// a goroutine with its stack, a second goroutine watching for the client
// closing, and about 10 KB of read and write buffers. With thousands of
// clients long-polling, that is most of the server's memory.
//
// Whoever ends the wait answers with Parked.Respond or RespondError: the
// response is written to the connection, the access log line and metrics
// are emitted, and the connection goes back to the HTTP server (through
// Options.HandBack) for the client's next request.
//
// On Linux a parked request notices its client going away (one epoll
// set watches every parked connection, see hangup_linux.go): its owner is
// told (OnHangUp) and ends it with Abandon. Elsewhere it stays parked
// until it is answered.

import (
	"context"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// parkedWriteTimeout bounds writing a parked request's answer.
const parkedWriteTimeout = 30 * time.Second

// Parked is a request whose handler has returned without answering; its
// connection waits, with no goroutine, for Respond, RespondError or
// Abandon, one of which must be called once.
type Parked struct {
	conn      net.Conn
	pending   []byte // request bytes the client sent after this request
	header    []byte // response header lines set before parking
	keepAlive bool
	requestID string
	deadline  time.Time // the request's deadline (zero: none)
	route     string
	access    accessRecord
	handBack  func(net.Conn)
	answered  atomic.Bool

	fd       int32 // the socket, when watched for a hangup
	watched  bool
	mu       sync.Mutex
	gone     bool // the client closed the connection
	onHangUp func()
}

// clientClosedRequest is the status logged for a request whose client
// went away before the answer (nginx's 499).
const clientClosedRequest = 499

// Park takes r's connection from net/http so the handler can return while
// the request waits. It declines (false) when the server has no HandBack,
// for HTTP/2 (its streams share a connection), for a request with a body
// and when the connection cannot be taken over; the handler then waits as
// usual. After a true, the handler must not touch w or r again.
func Park(w http.ResponseWriter, r *http.Request) (*Parked, bool) {
	st := stateOf(r.Context())
	if st == nil || st.handBack == nil || r.ProtoMajor != 1 || r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return nil, false
	}
	var header []byte
	for k, vs := range w.Header() {
		for _, v := range vs {
			header = append(header, k...)
			header = append(header, ": "...)
			header = append(header, v...)
			header = append(header, "\r\n"...)
		}
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	p := &Parked{conn: conn, header: header, keepAlive: r.ProtoAtLeast(1, 1) && !r.Close,
		route: st.route, access: st.access, handBack: st.handBack}
	if n := brw.Reader.Buffered(); n > 0 {
		// A pipelining client already sent its next request.
		b, _ := brw.Reader.Peek(n)
		p.pending = append([]byte(nil), b...)
	}
	p.deadline, _ = r.Context().Deadline()
	p.requestID = RequestID(r.Context())
	// The server set deadlines for the request it was serving; the wait
	// has its own.
	_ = conn.SetDeadline(time.Time{})
	st.parked = true
	return p, true
}

// OnHangUp starts watching the connection: f is called, once, if the
// client closes it before the answer (at once if it already has). f runs
// on the watcher's goroutine and must not block. Watching costs a couple
// of system calls, so a request that is answered at once need not.
func (p *Parked) OnHangUp(f func()) {
	p.mu.Lock()
	p.onHangUp = f
	gone := p.gone
	p.mu.Unlock()
	if gone {
		f()
		return
	}
	if !p.watched {
		p.watched = watcher.watch(p)
	}
}

func (p *Parked) hungUp() {
	p.mu.Lock()
	p.gone = true
	f := p.onHangUp
	p.mu.Unlock()
	if f != nil {
		f()
	}
}

// Gone reports whether the client is known to have closed the connection.
func (p *Parked) Gone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone
}

// Abandon ends a request whose client went away, without an answer.
func (p *Parked) Abandon() {
	if p.answered.Swap(true) {
		return
	}
	p.release()
	p.conn.Close()
	p.access.log(p.Context(), p.route, clientClosedRequest, 0)
}

// release stops watching the connection; it comes before the connection
// is written, closed or handed back.
func (p *Parked) release() {
	if p.watched {
		watcher.unwatch(p)
		p.watched = false
	}
}

// Context carries the parked request's ID and logger, but nothing of the
// request itself, and is never cancelled. (It is made on demand: a parked
// request keeps as little as it can.)
func (p *Parked) Context() context.Context {
	ctx := context.WithValue(context.Background(), requestIDKey{}, p.requestID)
	return context.WithValue(ctx, loggerKey{}, p.access.logger)
}

// Deadline is when the request's deadline passes (zero: it has none).
func (p *Parked) Deadline() time.Time { return p.deadline }

// Respond answers the parked request with a JSON body.
func (p *Parked) Respond(status int, body []byte) {
	p.finish(status, nil, body)
}

// RespondError answers the parked request with err as WriteError would.
func (p *Parked) RespondError(err error) {
	ctx := p.Context()
	me := errorFor(ctx, err)
	var extra []byte
	if me.RetryAfter > 0 {
		extra = append(extra, "Retry-After: "...)
		extra = strconv.AppendInt(extra, int64(math.Ceil(me.RetryAfter.Seconds())), 10)
		extra = append(extra, "\r\n"...)
	}
	status, body := encodeJSON(ctx, me.Status, me)
	p.finish(status, extra, body)
}

func (p *Parked) finish(status int, extraHeader, body []byte) {
	if p.answered.Swap(true) {
		return // abandoned meanwhile, or a bug: an answer is written once
	}
	p.release()
	ctx := p.Context()
	if p.Gone() {
		p.conn.Close()
		p.access.log(ctx, p.route, clientClosedRequest, 0)
		return
	}
	head := make([]byte, 0, 160+len(p.header)+len(extraHeader))
	head = append(head, "HTTP/1.1 "...)
	head = strconv.AppendInt(head, int64(status), 10)
	head = append(head, ' ')
	head = append(head, http.StatusText(status)...)
	head = append(head, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	head = strconv.AppendInt(head, int64(len(body)), 10)
	head = append(head, "\r\nDate: "...)
	head = time.Now().UTC().AppendFormat(head, http.TimeFormat)
	head = append(head, "\r\n"...)
	if !p.keepAlive {
		head = append(head, "Connection: close\r\n"...)
	}
	head = append(head, p.header...)
	head = append(head, extraHeader...)
	head = append(head, "\r\n"...)

	_ = p.conn.SetWriteDeadline(time.Now().Add(parkedWriteTimeout))
	bufs := net.Buffers{head, body}
	n, err := bufs.WriteTo(p.conn)
	if err != nil {
		Logger(ctx).LogAttrs(ctx, slog.LevelDebug, "cannot answer a parked request", slog.Any("err", err))
	}
	p.access.log(ctx, p.route, status, max(0, n-int64(len(head))))

	conn := p.conn
	p.conn = nil
	if err != nil || !p.keepAlive {
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if len(p.pending) > 0 {
		conn = &prefixConn{Conn: conn, prefix: p.pending}
	}
	p.handBack(conn)
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
