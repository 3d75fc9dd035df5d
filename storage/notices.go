package storage

// Commit notices. A process may keep in memory what it read of some rows
// (access token owners in clientapi/auth, compiled push rules in
// syncapi/push), so it must hear at once when a transaction of its own
// changes them: the transaction records the change, and after the commit
// (before WithTx returns, so before the client that asked is answered) the
// listeners are told. Other processes hear of it through the bus, as the
// callers arrange.

import "sync"

// listeners are the functions registered for one kind of notice.
type listeners[T any] struct {
	mu  sync.RWMutex
	fns []func(T)
}

func (l *listeners[T]) add(f func(T)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fns = append(l.fns, f)
}

// tell calls every listener with each notice, in order.
func (l *listeners[T]) tell(notices []T) {
	if len(notices) == 0 {
		return
	}
	l.mu.RLock()
	fns := l.fns
	l.mu.RUnlock()
	for _, n := range notices {
		for _, f := range fns {
			f(n)
		}
	}
}

// appendOnce appends v to list unless it is there already.
func appendOnce[T comparable](list []T, v T) []T {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// AccountDataChange names a user's account data written by a transaction.
type AccountDataChange struct {
	UserID, RoomID, Type string
}

// OnAccountDataChanged registers f, called after every committed
// transaction that wrote account data, once per (user, room, type). f runs
// on the committing goroutine and must be quick. It may also be called
// after a commit that failed (whether it took effect is then unknown).
func (db *DB) OnAccountDataChanged(f func(AccountDataChange)) { db.accountData.add(f) }
