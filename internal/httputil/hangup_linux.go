package httputil

// Noticing that the client of a parked request went away, without a
// goroutine per connection: one epoll instance, watched by one goroutine,
// holds the sockets of parked requests and reports those whose peer
// closed (or reset) the connection. The runtime's own poller keeps its
// registration of the same sockets; an fd may be in several epoll sets.

import (
	"sync"
	"syscall"
)

type hangupWatcher struct {
	epfd  int
	mu    sync.Mutex
	byFD  map[int32]*Parked
	start sync.Once
}

var watcher = &hangupWatcher{epfd: -1}

// watch reports p's hangup to p.hungUp; false when it cannot.
func (w *hangupWatcher) watch(p *Parked) bool {
	w.start.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		w.epfd, w.byFD = fd, map[int32]*Parked{}
		go w.run()
	})
	if w.epfd < 0 {
		return false
	}
	sc, ok := p.conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	watched := false
	_ = rc.Control(func(fd uintptr) {
		w.mu.Lock()
		defer w.mu.Unlock()
		// Only the peer closing: readable data (a pipelined request) is
		// for whoever reads the connection next.
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		if syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) == nil {
			w.byFD[int32(fd)] = p
			p.fd, watched = int32(fd), true
		}
	})
	return watched
}

// unwatch stops watching p; it must come before p's connection is closed
// or handed back.
func (w *hangupWatcher) unwatch(p *Parked) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byFD[p.fd] == p {
		delete(w.byFD, p.fd)
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(p.fd), nil)
	}
}

func (w *hangupWatcher) run() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			w.mu.Lock()
			p := w.byFD[ev.Fd]
			if p != nil {
				delete(w.byFD, ev.Fd)
				_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(ev.Fd), nil)
			}
			w.mu.Unlock()
			if p != nil {
				p.hungUp()
			}
		}
	}
}
