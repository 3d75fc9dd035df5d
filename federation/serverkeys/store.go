// Package serverkeys keeps other servers' signing keys (server-server-api
// "Retrieving server keys"): it fetches them from the servers themselves
// (GET /_matrix/key/v2/server, whose self-signature and server_name it
// checks) or, when that fails, through the trusted notaries
// (POST /_matrix/key/v2/query, whose answers must carry the notary's
// signature too), keeps them in the database and in a bounded memory cache,
// and answers "what is key K of server S, valid at time T?" for checking
// event signatures (the roomserver's ServerKeys) and request signatures.
//
// Validity: a current key is valid until its response's valid_until_ts,
// capped at 7 days after the fetch; an old key (old_verify_keys) until its
// expired_ts. Room versions 5 and later require the key to be valid at the
// event's origin_server_ts; versions 1 to 4 ignore validity, which callers
// ask for with AnyTime. A key that is missing, or not valid at the time
// asked, makes the store fetch the server's keys again, with concurrent
// fetches for one server collapsed into one and fetches for one server
// rate limited. It also serves the data behind this server's notary
// endpoints (Query).
package serverkeys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/federation/internal/flight"
	"github.com/myelin-chat/myelin/federation/internal/lru"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/storage"
)

// AnyTime, as VerifyKey's atTS, asks for a key whatever its validity
// period: room versions 1 to 4, which ignore valid_until_ts. (It works
// because every key is valid at time 0 under the rule "atTS ≤ validity".)
const AnyTime int64 = 0

// ErrNoKey is returned (wrapped) when no valid key can be had: the server
// does not have the key, it is not valid at the time asked, or the server
// and the notaries cannot be reached (or were asked too often). Other
// errors are faults of this server (the database).
var ErrNoKey = errors.New("no valid signing key")

// DefaultCacheSize is how many servers' keys are kept in memory.
const DefaultCacheSize = 4096

// Fetching limits.
const (
	// fetchTimeout bounds one fetch, direct and through notaries.
	fetchTimeout = 30 * time.Second
	// directTimeout bounds the request to the server itself, leaving time
	// for the notaries.
	directTimeout = 15 * time.Second
	// maxDirectResponse and maxNotaryResponse bound response bodies.
	maxDirectResponse = 512 << 10
	maxNotaryResponse = 4 << 20
	// fetchBurst fetches of one server's keys may happen at once, then
	// one per fetchRefill: a server (or anyone naming it in requests with
	// made-up key IDs) cannot make us hammer it.
	fetchBurst  = 4
	fetchRefill = time.Minute
)

// Config is what a Store is built from.
type Config struct {
	DB     *storage.DB
	Client *fedclient.Client
	// ServerName and Keys: this server's own keys are answered from the
	// ring, never fetched.
	ServerName string
	Keys       *keys.Ring
	// Notaries are the trusted key servers (trusted_key_servers), asked in
	// order when a server cannot give its keys itself. Their own keys are
	// fetched from them directly.
	Notaries []string
	// CacheSize is how many servers' keys are kept in memory; 0 means
	// DefaultCacheSize.
	CacheSize int
	Logger    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store keeps other servers' keys. It is safe for concurrent use.
type Store struct {
	db         *storage.DB
	client     *fedclient.Client
	serverName string
	ring       *keys.Ring
	notaries   []string
	logger     *slog.Logger
	now        func() time.Time

	mu      sync.Mutex
	servers *lru.Cache[string, *serverEntry]
	flights flight.Group[flightKey, struct{}]
}

// serverEntry is what memory holds of one server.
type serverEntry struct {
	keys map[string]cachedKey // by key ID; nil until loaded from the database
	// The fetch rate limit: a token bucket.
	tokens   float64
	refilled time.Time
}

type cachedKey struct {
	pub        ed25519.PublicKey
	validUntil int64 // ms; for an old key, its expired_ts
}

// flightKey names a fetch: of whose keys, and whether notaries may be
// asked. Fetches of a notary's own keys never ask notaries, so a fetch
// only ever waits for fetches of the other kind, never in a cycle.
type flightKey struct {
	server   string
	notaries bool
}

// New builds a store.
func New(c Config) (*Store, error) {
	if c.DB == nil || c.Client == nil || c.ServerName == "" || c.Keys == nil {
		return nil, errors.New("serverkeys: DB, Client, ServerName and Keys are required")
	}
	for _, n := range c.Notaries {
		if err := config.ValidServerName(n); err != nil {
			return nil, fmt.Errorf("serverkeys: notary %q: %v", n, err)
		}
	}
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Store{
		db:         c.DB,
		client:     c.Client,
		serverName: c.ServerName,
		ring:       c.Keys,
		notaries:   c.Notaries,
		logger:     c.Logger.With("component", "serverkeys"),
		now:        c.Now,
		servers:    lru.New[string, *serverEntry](c.CacheSize),
	}, nil
}

// VerifyKey returns the public key keyID of serverName valid at atTS
// (milliseconds since the epoch; AnyTime for room versions 1 to 4),
// fetching the server's keys when the store does not have one. It
// implements roomserver.ServerKeys. The error wraps ErrNoKey when there is
// no such valid key.
func (s *Store) VerifyKey(ctx context.Context, serverName, keyID string, atTS int64) (ed25519.PublicKey, error) {
	return s.lookup(ctx, serverName, keyID, atTS, true)
}

// lookup is VerifyKey; notaries says whether notaries may be asked.
func (s *Store) lookup(ctx context.Context, serverName, keyID string, atTS int64, notaries bool) (ed25519.PublicKey, error) {
	if serverName == s.serverName {
		return s.ownKey(keyID, atTS)
	}
	if err := config.ValidServerName(serverName); err != nil {
		return nil, fmt.Errorf("%w: %q is not a server name: %v", ErrNoKey, truncate(serverName), err)
	}
	if !validKeyID(keyID) {
		return nil, fmt.Errorf("%w: %q is not an ed25519 key ID", ErrNoKey, truncate(keyID))
	}
	if pub, ok := s.cached(serverName, keyID, atTS); ok {
		return pub, nil
	}
	// Another process (or an earlier run) may have it.
	if err := s.reload(ctx, serverName); err != nil {
		return nil, err
	}
	if pub, ok := s.cached(serverName, keyID, atTS); ok {
		return pub, nil
	}
	// Fetch. A fetch already running for the server may have been started
	// for another key: if joining it did not bring this one, start one
	// (once).
	var fetchErr error
	for range 2 {
		started := false
		_, err := s.flights.Do(ctx, flightKey{serverName, notaries}, func(ctx context.Context) (struct{}, error) {
			started = true
			return struct{}{}, s.fetch(ctx, serverName, keyID, atTS, notaries)
		})
		if pub, ok := s.cached(serverName, keyID, atTS); ok {
			return pub, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fetchErr = err
		if started || err != nil {
			break
		}
	}
	what := "is unknown"
	if s.has(serverName, keyID) {
		what = fmt.Sprintf("is not valid at %d", atTS)
	}
	if fetchErr != nil {
		return nil, fmt.Errorf("%w: key %s of %s %s: %w", ErrNoKey, keyID, serverName, what, fetchErr)
	}
	return nil, fmt.Errorf("%w: key %s of %s %s", ErrNoKey, keyID, serverName, what)
}

// ownKey answers for this server's keys from the ring: the current key is
// always valid, an old key until it expired.
func (s *Store) ownKey(keyID string, atTS int64) (ed25519.PublicKey, error) {
	if current, key := s.ring.Current(); keyID == current {
		return key.Public().(ed25519.PublicKey), nil
	}
	for _, old := range s.ring.Old() {
		if old.ID == keyID {
			if atTS > old.ExpiredTS {
				return nil, fmt.Errorf("%w: this server's key %s expired at %d, before %d", ErrNoKey, keyID, old.ExpiredTS, atTS)
			}
			return old.Public, nil
		}
	}
	return nil, fmt.Errorf("%w: this server has no key %s", ErrNoKey, truncate(keyID))
}

// cached looks in memory.
func (s *Store) cached(serverName, keyID string, atTS int64) (ed25519.PublicKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.servers.Get(serverName)
	if !ok {
		return nil, false
	}
	k, ok := e.keys[keyID]
	if !ok || atTS > k.validUntil {
		return nil, false
	}
	return k.pub, true
}

// has reports whether memory knows the key at all.
func (s *Store) has(serverName, keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.servers.Get(serverName)
	if !ok {
		return false
	}
	_, ok = e.keys[keyID]
	return ok
}

// reload reads serverName's keys from the database into memory.
func (s *Store) reload(ctx context.Context, serverName string) error {
	stored, err := s.db.ServerKeys(ctx, serverName)
	if err != nil {
		return err
	}
	ks := make(map[string]cachedKey, len(stored))
	for _, k := range stored {
		v := k.ValidUntilTS
		if k.ExpiredTS != 0 {
			v = k.ExpiredTS
		}
		ks[k.KeyID] = cachedKey{pub: ed25519.PublicKey(k.PublicKey), validUntil: v}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(serverName)
	e.keys = ks
	return nil
}

// entry returns serverName's entry, adding it if needed. s.mu is held.
func (s *Store) entry(serverName string) *serverEntry {
	e, ok := s.servers.Get(serverName)
	if !ok {
		e = &serverEntry{tokens: fetchBurst, refilled: s.now()}
		s.servers.Put(serverName, e)
	}
	return e
}

// takeFetchToken applies the fetch rate limit of serverName.
func (s *Store) takeFetchToken(serverName string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(serverName)
	now := s.now()
	if elapsed := now.Sub(e.refilled); elapsed > 0 {
		e.tokens = min(fetchBurst, e.tokens+float64(elapsed)/float64(fetchRefill))
		e.refilled = now
	}
	if e.tokens < 1 {
		return false
	}
	e.tokens--
	return true
}
