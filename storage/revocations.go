package storage

// Access token revocations. A process may keep the owners of access tokens
// it has checked in memory (clientapi/auth does), so it must hear at once
// when a token stops being valid. Every way that happens deletes the token
// here (DeleteDeviceTokens: logout, logout/all, device deletion, a login
// reusing a device ID, deactivation) or marks the account deactivated
// (DeactivateAccount); those record the user in their transaction, and
// after the commit (before WithTx returns, so before the client hears of
// it) the listeners are told. Expiry needs no notice: the owner carries
// the expiry time.

import "sync"

// revocationListeners are the functions OnAccessTokensRevoked registered.
type revocationListeners struct {
	mu  sync.RWMutex
	fns []func(localpart string)
}

// OnAccessTokensRevoked registers f, called with the localpart after every
// committed transaction that revoked some access token of the user (or
// deactivated them). f runs on the committing goroutine and must be quick.
// It may also be called after a commit that failed (whether it took effect
// is then unknown), which only costs a listener a cache miss.
func (db *DB) OnAccessTokensRevoked(f func(localpart string)) {
	db.revocations.mu.Lock()
	defer db.revocations.mu.Unlock()
	db.revocations.fns = append(db.revocations.fns, f)
}

// tokensRevoked records, in a transaction, that localpart's tokens (some
// or all) stop being valid when it commits.
func (tx *Tx) tokensRevoked(localpart string) {
	for _, lp := range tx.revoked {
		if lp == localpart {
			return
		}
	}
	tx.revoked = append(tx.revoked, localpart)
}

// announceRevoked tells the listeners about the revocations of a
// committed transaction.
func (db *DB) announceRevoked(localparts []string) {
	if len(localparts) == 0 {
		return
	}
	db.revocations.mu.RLock()
	fns := db.revocations.fns
	db.revocations.mu.RUnlock()
	for _, lp := range localparts {
		for _, f := range fns {
			f(lp)
		}
	}
}
