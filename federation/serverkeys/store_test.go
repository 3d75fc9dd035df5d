package serverkeys

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// clock is a settable test clock; it starts at the real time because the
// signed requests and TLS certificates of the fakes use the real one.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
func (c *clock) ms() int64 { return c.now().UnixMilli() }

// fakeServer is a remote homeserver's key endpoint (and, when notaryFor
// is set, a notary), on 127.0.0.1 over TLS from the test CA.
type fakeServer struct {
	t     *testing.T
	name  string
	srv   *httptest.Server
	mu    sync.Mutex
	keyID string
	key   ed25519.PrivateKey
	old   map[string]oldKey
	// validUntil is the valid_until_ts served.
	validUntil int64
	// answer, when set, replaces the normal key response.
	answer http.HandlerFunc
	// block, when set, holds key requests until closed.
	block   chan struct{}
	fetches atomic.Int32
	// notaryFor maps server names to the fakes this one notarises.
	notaryFor map[string]*fakeServer
	// notarySign signs notary answers (nil: with the notary's own key).
	notarySign func(raw []byte) []byte
	queries    atomic.Int32
}

type oldKey struct {
	pub     ed25519.PublicKey
	expired int64
}

func newFakeServer(t *testing.T, ca *tlsutil.CA, validUntil int64) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, keyID: "ed25519:k1", validUntil: validUntil, old: map[string]oldKey{}}
	_, f.key, _ = ed25519.GenerateKey(nil)
	cert, err := ca.IssueTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.name = f.srv.Listener.Addr().String()
	return f
}

// rotate makes a new current key; the previous one expires at expired.
func (f *fakeServer) rotate(newID string, expired int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.old[f.keyID] = oldKey{pub: f.key.Public().(ed25519.PublicKey), expired: expired}
	_, f.key, _ = ed25519.GenerateKey(nil)
	f.keyID = newID
}

func (f *fakeServer) pub(keyID string) ed25519.PublicKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	if keyID == f.keyID {
		return f.key.Public().(ed25519.PublicKey)
	}
	return f.old[keyID].pub
}

// response is the signed key response, as the server would serve it.
func (f *fakeServer) response() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := map[string]any{}
	for id, k := range f.old {
		old[id] = map[string]any{"key": pdu.EncodeBase64(k.pub), "expired_ts": k.expired}
	}
	body, _ := json.Marshal(map[string]any{
		"server_name":     f.name,
		"valid_until_ts":  f.validUntil,
		"verify_keys":     map[string]any{f.keyID: map[string]string{"key": pdu.EncodeBase64(f.key.Public().(ed25519.PublicKey))}},
		"old_verify_keys": old,
	})
	signed, err := pdu.SignJSON(body, f.name, f.keyID, f.key)
	if err != nil {
		f.t.Error(err)
	}
	return signed
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_matrix/key/v2/server":
		f.fetches.Add(1)
		f.mu.Lock()
		answer, block := f.answer, f.block
		f.mu.Unlock()
		if block != nil {
			<-block
		}
		if answer != nil {
			answer(w, r)
			return
		}
		w.Write(f.response())
	case "/_matrix/key/v2/query":
		f.queries.Add(1)
		var q notaryQuery
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &q); err != nil {
			http.Error(w, "bad", 400)
			return
		}
		var out []json.RawMessage
		for name := range q.ServerKeys {
			origin, ok := f.notaryFor[name]
			if !ok {
				continue
			}
			raw := origin.response()
			if f.notarySign != nil {
				raw = f.notarySign(raw)
			} else {
				f.mu.Lock()
				raw, _ = pdu.SignJSON(raw, f.name, f.keyID, f.key)
				f.mu.Unlock()
			}
			out = append(out, raw)
		}
		json.NewEncoder(w).Encode(map[string]any{"server_keys": out})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

type fixture struct {
	ca    *tlsutil.CA
	clock *clock
	db    *storage.DB
	ring  *keys.Ring
	store *Store
}

// newFixture makes a store on db whose client trusts ca (nil: a new CA).
func newFixture(t *testing.T, db *storage.DB, ca *tlsutil.CA, notaries ...string) *fixture {
	t.Helper()
	var err error
	if ca == nil {
		if ca, err = tlsutil.NewTestCA(); err != nil {
			t.Fatal(err)
		}
	}
	fx := &fixture{ca: ca, clock: &clock{t: time.Now()}, db: db}
	fx.ring, err = keys.LoadOrGenerate(filepath.Join(t.TempDir(), "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	fx.store = fx.newStore(t, notaries...)
	return fx
}

// newStore makes a store on the fixture's database (another process, or
// the same after a restart).
func (fx *fixture) newStore(t *testing.T, notaries ...string) *Store {
	t.Helper()
	// The fake servers listen on 127.0.0.1, which the default denylist
	// refuses.
	deny, err := config.ParseIPRanges(config.DefaultFederationIPRangeDenylist)
	if err != nil {
		t.Fatal(err)
	}
	ipFilter := fedclient.NewIPFilter(deny, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	client, err := fedclient.New(fedclient.Config{ServerName: "me.test", Keys: fx.ring, TLS: &tls.Config{RootCAs: fx.ca.Pool()}, IPFilter: ipFilter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	s, err := New(Config{DB: fx.db, Client: client, ServerName: "me.test", Keys: fx.ring, Notaries: notaries,
		Logger: slog.New(slog.DiscardHandler), Now: fx.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKey(t *testing.T, s *Store, server, keyID string, atTS int64, want ed25519.PublicKey) {
	t.Helper()
	got, err := s.VerifyKey(context.Background(), server, keyID, atTS)
	if err != nil {
		t.Fatalf("VerifyKey(%s, %s, %d): %v", server, keyID, atTS, err)
	}
	if !got.Equal(want) {
		t.Fatalf("VerifyKey(%s, %s, %d) returned another key", server, keyID, atTS)
	}
}

func noKey(t *testing.T, s *Store, server, keyID string, atTS int64, wantText string) {
	t.Helper()
	_, err := s.VerifyKey(context.Background(), server, keyID, atTS)
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), wantText) {
		t.Fatalf("VerifyKey(%s, %s, %d) = %v, want ErrNoKey containing %q", server, keyID, atTS, err, wantText)
	}
}

func TestDirectFetchAndCaches(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		fx := newFixture(t, db, nil)
		remote := newFakeServer(t, fx.ca, fx.clock.now().Add(24*time.Hour).UnixMilli())
		now := fx.clock.ms()

		mustKey(t, fx.store, remote.name, "ed25519:k1", now, remote.pub("ed25519:k1"))
		mustKey(t, fx.store, remote.name, "ed25519:k1", now+time.Hour.Milliseconds(), remote.pub("ed25519:k1"))
		if n := remote.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1 (then memory)", n)
		}
		// Another store on the same database (a restart, another process)
		// reads the database instead of fetching.
		mustKey(t, fx.newStore(t), remote.name, "ed25519:k1", now, remote.pub("ed25519:k1"))
		if n := remote.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches after a restart, want still 1", n)
		}
		// The response was kept for the notary endpoint.
		if r, err := db.ServerKeyResponse(context.Background(), remote.name); err != nil || !strings.Contains(string(r.JSON), `"ed25519:k1"`) {
			t.Fatalf("kept response %v, %v", r, err)
		}

		// A key the server does not have: fetched again, then refused.
		noKey(t, fx.store, remote.name, "ed25519:nope", now, "is unknown")
		if n := remote.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
		// Bad arguments are refused without fetching.
		noKey(t, fx.store, "not a server", "ed25519:k1", now, "not a server name")
		noKey(t, fx.store, remote.name, "rsa:k1", now, "not an ed25519 key ID")
		noKey(t, fx.store, remote.name, "ed25519:bad-char", now, "not an ed25519 key ID")
		if n := remote.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
	})
}

func TestValidity(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		fx := newFixture(t, db, nil)
		start := fx.clock.ms()
		hour := time.Hour.Milliseconds()
		remote := newFakeServer(t, fx.ca, start+hour)
		k1 := remote.pub("ed25519:k1")

		mustKey(t, fx.store, remote.name, "ed25519:k1", start, k1)
		// Events after valid_until_ts (room v5+): the keys are fetched
		// again; the server still says an hour from the start, so no.
		noKey(t, fx.store, remote.name, "ed25519:k1", start+hour+1, "is not valid at")
		if n := remote.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2 (a refetch for the later time)", n)
		}
		// Room versions 1-4 ignore validity.
		mustKey(t, fx.store, remote.name, "ed25519:k1", AnyTime, k1)

		// The cache expires with the key: later, the server publishes a
		// longer validity, which a refetch picks up.
		fx.clock.advance(2 * time.Hour)
		remote.set(func(f *fakeServer) { f.validUntil = start + 10*hour })
		mustKey(t, fx.store, remote.name, "ed25519:k1", start+3*hour, k1)
		if n := remote.fetches.Load(); n != 3 {
			t.Fatalf("%d fetches, want 3", n)
		}
		mustKey(t, fx.store, remote.name, "ed25519:k1", start+10*hour, k1) // from memory
		if n := remote.fetches.Load(); n != 3 {
			t.Fatalf("%d fetches, want 3", n)
		}

		// valid_until_ts is capped at 7 days after the fetch.
		other := newFakeServer(t, fx.ca, start+30*24*hour)
		fetchedAt := fx.clock.ms()
		mustKey(t, fx.store, other.name, "ed25519:k1", fetchedAt+7*24*hour, other.pub("ed25519:k1"))
		noKey(t, fx.store, other.name, "ed25519:k1", fetchedAt+7*24*hour+1, "is not valid at")
	})
}

func TestRotationOldKeys(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		fx := newFixture(t, db, nil)
		start := fx.clock.ms()
		day := 24 * time.Hour.Milliseconds()
		remote := newFakeServer(t, fx.ca, start+day)
		k1 := remote.pub("ed25519:k1")
		// We cache k1 as current...
		mustKey(t, fx.store, remote.name, "ed25519:k1", start, k1)
		// ...the server rotates to k2, k1 expiring now...
		rotated := start + 1000
		remote.rotate("ed25519:k2", rotated)
		// ...and events it sends from now on are signed with k2, which
		// makes us fetch again and learn that k1 expired.
		mustKey(t, fx.store, remote.name, "ed25519:k2", rotated+1, remote.pub("ed25519:k2"))
		// Events signed with k1 before it expired still verify; events
		// claiming a later time do not (room v5+), but do in v1-4.
		mustKey(t, fx.store, remote.name, "ed25519:k1", rotated, k1)
		mustKey(t, fx.store, remote.name, "ed25519:k1", start, k1)
		noKey(t, fx.store, remote.name, "ed25519:k1", rotated+1, "is not valid at")
		mustKey(t, fx.store, remote.name, "ed25519:k1", AnyTime, k1)

		// A server that never saw k1 learns it from old_verify_keys.
		other := newFixture(t, storagetest.Open(t, db.Dialect()), fx.ca)
		mustKey(t, other.store, remote.name, "ed25519:k1", rotated, k1)
		noKey(t, other.store, remote.name, "ed25519:k1", rotated+1, "is not valid at")
	})
}

func TestBadResponses(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	fx := newFixture(t, db, nil)
	remote := newFakeServer(t, fx.ca, fx.clock.now().Add(time.Hour).UnixMilli())
	otherKey := func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(nil); return k }()
	// rewrite edits the response and signs it as signAs with key (nil: unsigned).
	rewrite := func(edit func(m map[string]any), signAs string, key ed25519.PrivateKey, keyID string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var m map[string]any
			json.Unmarshal(remote.response(), &m)
			delete(m, "signatures")
			edit(m)
			body, _ := json.Marshal(m)
			if key != nil {
				body, _ = pdu.SignJSON(body, signAs, keyID, key)
			}
			w.Write(body)
		}
	}
	none := func(map[string]any) {}
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   string
	}{
		{"unsigned", rewrite(none, "", nil, ""), "not signed by any of its verify keys"},
		{"signed by a key it does not list", rewrite(none, remote.name, otherKey, "ed25519:k1"), "signature does not verify"},
		{"signed only by an unlisted key ID", rewrite(none, remote.name, otherKey, "ed25519:other"), "not signed by any of its verify keys"},
		{"signed by another server", rewrite(none, "evil.test", remote.key, "ed25519:k1"), "not signed by any of its verify keys"},
		{"wrong server_name", rewrite(func(m map[string]any) { m["server_name"] = "evil.test" }, remote.name, remote.key, "ed25519:k1"), "names server \"evil.test\""},
		{"no valid_until_ts", rewrite(func(m map[string]any) { delete(m, "valid_until_ts") }, remote.name, remote.key, "ed25519:k1"), "no valid_until_ts"},
		{"short key", rewrite(func(m map[string]any) {
			m["old_verify_keys"] = map[string]any{"ed25519:old": map[string]any{"key": "AAAA", "expired_ts": 1}}
		}, remote.name, remote.key, "ed25519:k1"), "is not 32 bytes"},
		{"old key without expired_ts", rewrite(func(m map[string]any) {
			m["old_verify_keys"] = map[string]any{"ed25519:old": map[string]any{"key": pdu.EncodeBase64(make([]byte, 32))}}
		}, remote.name, remote.key, "ed25519:k1"), "has no expired_ts"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`<html>`)) }, "not the JSON expected"},
		{"error status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }, "HTTP 500"},
		{"too large", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, maxDirectResponse+1)) }, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote.set(func(f *fakeServer) { f.answer = tt.answer })
			// A fresh store each time: no rate limit carried over.
			noKey(t, fx.newStore(t), remote.name, "ed25519:k1", fx.clock.ms(), tt.want)
		})
	}
	if ks, _ := db.ServerKeys(context.Background(), remote.name); len(ks) != 0 {
		t.Fatalf("keys stored from bad responses: %v", ks)
	}
	// Unknown algorithms are skipped, not refused.
	remote.set(func(f *fakeServer) {
		f.answer = rewrite(func(m map[string]any) {
			m["verify_keys"].(map[string]any)["curve25519:x"] = map[string]any{"key": "whatever"}
		}, remote.name, remote.key, "ed25519:k1")
	})
	mustKey(t, fx.newStore(t), remote.name, "ed25519:k1", fx.clock.ms(), remote.pub("ed25519:k1"))
}

func TestConcurrentFetchesCollapseAndRateLimit(t *testing.T) {
	fx := newFixture(t, storagetest.Open(t, storage.SQLite), nil)
	remote := newFakeServer(t, fx.ca, fx.clock.now().Add(time.Hour).UnixMilli())
	release := make(chan struct{})
	remote.set(func(f *fakeServer) { f.block = release })
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := fx.store.VerifyKey(context.Background(), remote.name, "ed25519:k1", fx.clock.ms()); err != nil {
				t.Error(err)
			}
		})
	}
	for deadline := time.Now().Add(5 * time.Second); remote.fetches.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := remote.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent lookups, want 1", n)
	}

	// Made-up key IDs make us fetch a few times, then no more than once a
	// minute.
	for i := range fetchBurst - 1 { // one token went to the first fetch
		noKey(t, fx.store, remote.name, fmt.Sprintf("ed25519:made_up%d", i), fx.clock.ms(), "is unknown")
	}
	before := remote.fetches.Load()
	noKey(t, fx.store, remote.name, "ed25519:made_up_more", fx.clock.ms(), "fetched too often")
	if n := remote.fetches.Load(); n != before {
		t.Fatal("a rate-limited lookup fetched")
	}
	// Known keys are still served.
	mustKey(t, fx.store, remote.name, "ed25519:k1", fx.clock.ms(), remote.pub("ed25519:k1"))
	fx.clock.advance(fetchRefill)
	noKey(t, fx.store, remote.name, "ed25519:made_up_later", fx.clock.ms(), "is unknown")
	if n := remote.fetches.Load(); n != before+1 {
		t.Fatalf("%d fetches after a minute, want %d", n, before+1)
	}
}

func TestNotaries(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ca, err := tlsutil.NewTestCA()
		if err != nil {
			t.Fatal(err)
		}
		validUntil := time.Now().Add(time.Hour).UnixMilli()
		origin := newFakeServer(t, ca, validUntil)
		notary := newFakeServer(t, ca, validUntil)
		notary.notaryFor = map[string]*fakeServer{origin.name: origin}
		// The origin cannot serve its keys itself.
		origin.set(func(f *fakeServer) {
			f.answer = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }
		})

		fx := newFixture(t, db, ca, notary.name)
		mustKey(t, fx.store, origin.name, "ed25519:k1", fx.clock.ms(), origin.pub("ed25519:k1"))
		if origin.fetches.Load() != 1 || notary.queries.Load() != 1 || notary.fetches.Load() != 1 {
			t.Fatalf("origin fetched %d, notary queried %d and its keys fetched %d; want 1, 1, 1",
				origin.fetches.Load(), notary.queries.Load(), notary.fetches.Load())
		}
		// The response from the notary is kept, with the notary's
		// signature, and not in place of a direct one later.
		if r, err := db.ServerKeyResponse(context.Background(), origin.name); err != nil || !strings.Contains(string(r.JSON), notary.name) {
			t.Fatalf("kept response %v, %v", r, err)
		}

		// Without notaries, the key cannot be had.
		other := newFixture(t, storagetest.Open(t, db.Dialect()), ca)
		noKey(t, other.store, origin.name, "ed25519:k1", other.clock.ms(), "HTTP 503")

		// A notary answer the notary did not sign, or signed with a key it
		// does not publish, or with a forged origin signature, is refused.
		_, stranger, _ := ed25519.GenerateKey(nil)
		for _, c := range []struct {
			name string
			sign func(raw []byte) []byte
			want string
		}{
			{"unsigned by the notary", func(raw []byte) []byte { return raw }, "not signed by the notary"},
			{"signed with a key the notary does not publish", func(raw []byte) []byte {
				out, _ := pdu.SignJSON(raw, notary.name, "ed25519:k1", stranger)
				return out
			}, "signature does not verify"},
			{"signed with an unknown notary key ID", func(raw []byte) []byte {
				out, _ := pdu.SignJSON(raw, notary.name, "ed25519:unknown", stranger)
				return out
			}, "not signed by the notary"},
			{"forged origin signature", func(raw []byte) []byte {
				var m map[string]any
				json.Unmarshal(raw, &m)
				delete(m, "signatures")
				b, _ := json.Marshal(m)
				b, _ = pdu.SignJSON(b, origin.name, "ed25519:k1", stranger)
				b, _ = pdu.SignJSON(b, notary.name, "ed25519:k1", notary.key)
				return b
			}, "signature does not verify"},
		} {
			t.Run(c.name, func(t *testing.T) {
				notary.set(func(f *fakeServer) { f.notarySign = c.sign })
				fx3 := newFixture(t, storagetest.Open(t, db.Dialect()), ca, notary.name)
				noKey(t, fx3.store, origin.name, "ed25519:k1", fx3.clock.ms(), c.want)
			})
		}
	})
}

func TestOwnKeys(t *testing.T) {
	fx := newFixture(t, storagetest.Open(t, storage.SQLite), nil)
	id1, k1 := fx.ring.Current()
	mustKey(t, fx.store, "me.test", id1, fx.clock.ms(), k1.Public().(ed25519.PublicKey))
	rotated := time.Now()
	if err := fx.ring.Rotate(rotated); err != nil {
		t.Fatal(err)
	}
	id2, k2 := fx.ring.Current()
	mustKey(t, fx.store, "me.test", id2, fx.clock.ms(), k2.Public().(ed25519.PublicKey))
	mustKey(t, fx.store, "me.test", id1, rotated.UnixMilli(), k1.Public().(ed25519.PublicKey))
	noKey(t, fx.store, "me.test", id1, rotated.UnixMilli()+1, "expired")
	noKey(t, fx.store, "me.test", "ed25519:nope", fx.clock.ms(), "has no key")
}

func TestQuery(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		fx := newFixture(t, db, nil)
		ctx := context.Background()
		hour := time.Hour.Milliseconds()
		remote := newFakeServer(t, fx.ca, fx.clock.ms()+2*hour)

		// Nothing kept: fetched.
		got, err := fx.store.Query(ctx, remote.name, nil, 0)
		if err != nil || pdu.VerifyJSON(got, remote.name, "ed25519:k1", remote.pub("ed25519:k1")) != nil {
			t.Fatalf("Query = %s, %v", got, err)
		}
		// Fresh: served from the database.
		if _, err := fx.store.Query(ctx, remote.name, []string{"ed25519:k1"}, fx.clock.ms()+hour); err != nil || remote.fetches.Load() != 1 {
			t.Fatalf("fresh query fetched (%d fetches), %v", remote.fetches.Load(), err)
		}
		// A key ID not in it, or a validity beyond it, fetches again.
		fx.store.Query(ctx, remote.name, []string{"ed25519:new"}, 0)
		fx.store.Query(ctx, remote.name, nil, fx.clock.ms()+3*hour)
		if n := remote.fetches.Load(); n != 3 {
			t.Fatalf("%d fetches, want 3", n)
		}
		// Past half its lifetime: fetched again.
		fx.clock.advance(time.Hour + time.Minute)
		fx.store.Query(ctx, remote.name, nil, 0)
		if n := remote.fetches.Load(); n != 4 {
			t.Fatalf("%d fetches, want 4", n)
		}
		// The server down: what is kept is served, stale or not.
		remote.set(func(f *fakeServer) {
			f.answer = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }
		})
		fx.clock.advance(24 * time.Hour)
		got, err = fx.store.Query(ctx, remote.name, nil, 0)
		if err != nil || got == nil {
			t.Fatalf("server down: %s, %v; want the kept response", got, err)
		}
		// Never reachable and nothing kept: nothing.
		if got, err := fx.store.Query(ctx, "127.0.0.1:1", nil, 0); err != nil || got != nil {
			t.Fatalf("unreachable server: %s, %v", got, err)
		}
		// Our own name and bad names are not answered here.
		if got, err := fx.store.Query(ctx, "me.test", nil, 0); got != nil || err != nil {
			t.Fatalf("own name: %s, %v", got, err)
		}
		if got, err := fx.store.Query(ctx, "bad name", nil, 0); got != nil || err != nil {
			t.Fatalf("bad name: %s, %v", got, err)
		}
	})
}
