package storage

// Access token revocations. A process may keep the owners of access tokens
// it has checked in memory (clientapi/auth does), so it must hear at once
// when a token stops being valid. Every way that happens deletes the token
// here (DeleteDeviceTokens: logout, logout/all, device deletion, a login
// reusing a device ID, deactivation) or marks the account deactivated
// (DeactivateAccount); those record the user in their transaction, and
// after the commit (before WithTx returns, so before the client hears of
// it) the listeners are told (notices.go). Expiry needs no notice: the
// owner carries the expiry time.

// OnAccessTokensRevoked registers f, called with the localpart after every
// committed transaction that revoked some access token of the user (or
// deactivated them). f runs on the committing goroutine and must be quick.
// It may also be called after a commit that failed (whether it took effect
// is then unknown), which only costs a listener a cache miss.
func (db *DB) OnAccessTokensRevoked(f func(localpart string)) { db.revocations.add(f) }

// tokensRevoked records, in a transaction, that localpart's tokens (some
// or all) stop being valid when it commits.
func (tx *Tx) tokensRevoked(localpart string) {
	tx.revoked = appendOnce(tx.revoked, localpart)
}
