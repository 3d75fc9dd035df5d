package auth

// The access token cache. Every authenticated request used to read its
// token's owner from the database; under a burst of sends that read was a
// noticeable share of the server's CPU. Owners are now kept in memory, and
// a kept owner is dropped at once whenever a token of the user may have
// stopped being valid:
//
//   - in this process, by the database's revocation notice
//     (storage.OnAccessTokensRevoked), which every revoking transaction
//     (logout, logout/all, device deletion, a login replacing a device's
//     tokens, deactivation, ...) gives after its commit, before the request
//     that made it is answered;
//   - in the other processes sharing the database, by the same notice
//     published on the bus (ShareRevocations).
//
// Expiry needs no notice (the owner carries the expiry time, checked on
// every use), and a token issued by /refresh is not kept before its first
// use, which must spend the refresh token it replaced. As a backstop for a
// lost bus message, an owner is kept at most tokenCacheTTL.
//
// A lookup that read the database while a revocation was announced does
// not keep what it read, which may predate the revocation: a generation
// counter, bumped by every revocation, tells.

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/storage"
)

const (
	// tokenCacheTTL bounds how long an owner is kept without being read
	// again.
	tokenCacheTTL = time.Minute
	// tokenCacheMax bounds the owners kept; when full the cache is emptied.
	tokenCacheMax = 50_000
	// revocationSubject is the core NATS subject (without the namespace)
	// on which revocations reach the other processes; the message is the
	// localpart.
	revocationSubject = "auth.tokens_revoked"
)

type cachedOwner struct {
	owner storage.TokenOwner
	until time.Time
}

type tokenCache struct {
	mu      sync.Mutex
	gen     uint64                 // bumped by every revocation
	entries map[string]cachedOwner // token hash → owner
}

func newTokenCache() *tokenCache {
	return &tokenCache{entries: map[string]cachedOwner{}}
}

// get returns the owner kept for the token hash, if any.
func (c *tokenCache) get(hash string, now time.Time) (storage.TokenOwner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || now.After(e.until) {
		return storage.TokenOwner{}, false
	}
	return e.owner, true
}

// generation is read before the database is: put keeps what was read only
// if no revocation came in between.
func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *tokenCache) put(hash string, owner storage.TokenOwner, gen uint64, now time.Time) {
	if owner.SupersedesRefreshID != 0 || owner.Deactivated {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= tokenCacheMax {
		clear(c.entries)
	}
	c.entries[hash] = cachedOwner{owner: owner, until: now.Add(tokenCacheTTL)}
}

// revoke drops every owner kept for localpart's tokens.
func (c *tokenCache) revoke(localpart string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.entries {
		if e.owner.Localpart == localpart {
			delete(c.entries, h)
		}
	}
}

// revoked is the database's revocation notice: drop the user's tokens
// here, then tell the other processes.
func (a *Authenticator) revoked(localpart string) {
	a.tokens.revoke(localpart)
	a.busMu.Lock()
	b := a.bus
	a.busMu.Unlock()
	if b != nil {
		// A core NATS publish is buffered, never waits; a lost one is
		// covered by tokenCacheTTL.
		_ = b.Conn().Publish(b.Subject(revocationSubject), []byte(localpart))
	}
}

// ShareRevocations makes the token revocations of this process reach the
// other processes on the bus b, and theirs reach this one. A server whose
// processes share a database must call it before serving requests.
func (a *Authenticator) ShareRevocations(ctx context.Context, b *bus.Bus) error {
	sub, err := b.Conn().Subscribe(b.Subject(revocationSubject), func(m *nats.Msg) {
		a.tokens.revoke(string(m.Data))
	})
	if err != nil {
		return err
	}
	// The subscription is live once the server has it: a revocation
	// published after this returns is not missed.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Conn().FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	a.busMu.Lock()
	a.bus = b
	a.busMu.Unlock()
	return nil
}
