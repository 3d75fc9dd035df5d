package server

// The client API's HTTP server takes back connections whose requests were
// parked (httputil.Park: held /sync long-polls) once they are answered, so
// the client's next request on the connection is served as usual. A second
// listener, which accepts only such connections, feeds them to the same
// http.Server; Shutdown closes it with the real one.

import (
	"net"
	"sync"
)

type handBackListener struct {
	addr  net.Addr // the client listener's, set before serving
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandBackListener() *handBackListener {
	return &handBackListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// handBack gives c to the HTTP server, or closes it when the server has
// stopped accepting.
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

func (l *handBackListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handBackListener) Addr() net.Addr { return l.addr }
