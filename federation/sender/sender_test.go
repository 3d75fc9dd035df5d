package sender

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
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

	"github.com/myelin-chat/myelin/federation/fedauth"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

const us = "us.test"

// stack is one server's parts the sender works with, and a fake remote
// server standing in for the destination over real TLS.
type stack struct {
	t      *testing.T
	db     *storage.DB
	bus    *bus.Bus
	rs     *roomserver.Roomserver
	client *fedclient.Client
	remote *remote
}

func newStack(t *testing.T, db *storage.DB) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ring, err := keys.LoadOrGenerate(filepath.Join(dir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Namespace: bus.NamespaceFor(us), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	rs, err := roomserver.New(roomserver.Deps{DB: db, Bus: b, ServerName: us, Keys: ring, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	client, err := fedclient.New(fedclient.Config{
		ServerName: us, Keys: ring, Logger: logger,
		TLS:      &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
		IPFilter: fedclient.NewIPFilter(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	_, priv := ring.Current()
	return &stack{t: t, db: db, bus: b, rs: rs, client: client,
		remote: newRemote(t, ca, priv.Public().(ed25519.PublicKey))}
}

func (st *stack) sender(minBackoff time.Duration) *Sender {
	st.t.Helper()
	s, err := New(Config{DB: st.db, Bus: st.bus, Roomserver: st.rs, Client: st.client, ServerName: us,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MinBackoff: minBackoff})
	if err != nil {
		st.t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		st.t.Fatal(err)
	}
	st.t.Cleanup(s.Stop)
	return s
}

func (st *stack) createRoom(creator string) string {
	st.t.Helper()
	v, err := pdu.GetRoomVersion(pdu.DefaultRoomVersion)
	if err != nil {
		st.t.Fatal(err)
	}
	pl := map[string]any{"users": map[string]int{creator: 100}}
	if v.PrivilegedCreators {
		pl = map[string]any{}
	}
	roomID, _, err := st.rs.CreateRoom(context.Background(), roomserver.CreateRoomRequest{Creator: creator, Version: v,
		Initial: []roomserver.EventRequest{
			st.state(creator, "m.room.member", creator, map[string]any{"membership": "join"}),
			st.state(creator, "m.room.power_levels", "", pl),
			st.state(creator, "m.room.join_rules", "", map[string]any{"join_rule": "invite"}),
		}})
	if err != nil {
		st.t.Fatal(err)
	}
	return roomID
}

func (st *stack) state(sender, typ, key string, content any) roomserver.EventRequest {
	raw, err := json.Marshal(content)
	if err != nil {
		st.t.Fatal(err)
	}
	return roomserver.EventRequest{Type: typ, StateKey: &key, Sender: sender, Content: raw}
}

func (st *stack) send(roomID string, reqs ...roomserver.EventRequest) {
	st.t.Helper()
	if _, err := st.rs.Send(context.Background(), roomID, reqs...); err != nil {
		st.t.Fatal(err)
	}
}

func (st *stack) invite(roomID, sender, target string) {
	st.t.Helper()
	st.send(roomID, st.state(sender, "m.room.member", target, map[string]any{"membership": "invite"}))
}

func (st *stack) queued(dest string) int {
	st.t.Helper()
	n, err := st.db.QueuedPDUCount(context.Background(), dest)
	if err != nil {
		st.t.Fatal(err)
	}
	return n
}

// remote is a fake destination: an HTTPS server on 127.0.0.1 that checks
// each transaction's X-Matrix signature and records it.
type remote struct {
	t    *testing.T
	name string
	pub  ed25519.PublicKey

	// gate, when set, holds each transaction until it is closed; held
	// counts the transactions that reached it.
	gate chan struct{}
	held atomic.Int32

	mu     sync.Mutex
	status int
	tries  int
	txns   []received
	ids    map[string]bool
}

type received struct {
	id   string
	pdus []map[string]any
	edus []receivedEDU
}

type receivedEDU struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

func newRemote(t *testing.T, ca *tlsutil.CA, pub ed25519.PublicKey) *remote {
	cert, err := ca.IssueTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	r := &remote{t: t, pub: pub, status: http.StatusOK, ids: map[string]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.name = srv.Listener.Addr().String()
	return r
}

func (r *remote) serve(w http.ResponseWriter, req *http.Request) {
	id, ok := strings.CutPrefix(req.URL.Path, "/_matrix/federation/v1/send/")
	if !ok || req.Method != http.MethodPut {
		r.t.Errorf("unexpected request %s %s", req.Method, req.URL.Path)
		http.NotFound(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	if r.gate != nil {
		r.held.Add(1)
		<-r.gate
	}
	h, err := fedauth.ParseXMatrix(req.Header.Get("Authorization"))
	if err == nil {
		err = fedauth.Verify(h, req.Method, req.RequestURI, r.name, body, r.pub)
	}
	if err != nil || h.Origin != us {
		r.t.Errorf("transaction not signed by %s: %v", us, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var txn struct {
		Origin string           `json:"origin"`
		PDUs   []map[string]any `json:"pdus"`
		EDUs   []receivedEDU    `json:"edus"`
	}
	if err := json.Unmarshal(body, &txn); err != nil || txn.Origin != us {
		r.t.Errorf("bad transaction %s: %v", body, err)
	}
	r.mu.Lock()
	r.tries++
	status := r.status
	if status == http.StatusOK {
		if r.ids[id] {
			r.t.Errorf("transaction ID %s reused after success", id)
		}
		r.ids[id] = true
		r.txns = append(r.txns, received{id: id, pdus: txn.PDUs, edus: txn.EDUs})
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusOK {
		fmt.Fprint(w, `{"pdus":{}}`)
	} else {
		fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"down"}`)
	}
}

func (r *remote) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *remote) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries
}

func (r *remote) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.txns...)
}

// stateKeys returns the state keys of every PDU received, in order.
func (r *remote) stateKeys() []string {
	var out []string
	for _, txn := range r.received() {
		for _, p := range txn.pdus {
			k, _ := p["state_key"].(string)
			out = append(out, k)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func remoteUser(r *remote, i int) string { return fmt.Sprintf("@u%d:%s", i, r.name) }

func TestDeliversInvitesInSignedTransactionsOfAtMost50(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		st := newStack(t, db)
		st.sender(time.Hour)
		room := st.createRoom("@alice:" + us)
		// Only this server is in the room: nothing to send.
		st.send(room, roomserver.EventRequest{Type: "m.room.message", Sender: "@alice:" + us,
			Content: json.RawMessage(`{"msgtype":"m.text","body":"hi"}`)})
		st.invite(room, "@alice:"+us, "@carol:"+us)

		const n = 120
		for i := range n {
			st.invite(room, "@alice:"+us, remoteUser(st.remote, i))
		}
		waitFor(t, "every invite", func() bool { return len(st.remote.stateKeys()) == n })
		keys := st.remote.stateKeys()
		for i, k := range keys {
			if k != remoteUser(st.remote, i) {
				t.Fatalf("PDU %d is for %s, want %s (in order)", i, k, remoteUser(st.remote, i))
			}
		}
		txns := st.remote.received()
		if len(txns) < 3 {
			t.Errorf("%d transactions for %d PDUs", len(txns), n)
		}
		for _, txn := range txns {
			if len(txn.pdus) > MaxPDUsPerTransaction {
				t.Errorf("transaction %s has %d PDUs", txn.id, len(txn.pdus))
			}
		}
		waitFor(t, "the queue to empty", func() bool { return st.queued(st.remote.name) == 0 })
		dests, err := db.QueueDestinations(context.Background())
		if err != nil || len(dests) != 0 {
			t.Errorf("queued destinations: %v, %v", dests, err)
		}
	})
}

// A backlog (the remote slow to answer while events pile up) leaves in
// full transactions, the next one's events read while the one before is
// in flight: every event once, in order.
func TestBacklogLeavesInFullTransactionsInOrder(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		st := newStack(t, db)
		gate := make(chan struct{})
		st.remote.gate = gate
		st.sender(time.Hour)
		alice := "@alice:" + us
		room := st.createRoom(alice)
		st.invite(room, alice, remoteUser(st.remote, 0))
		waitFor(t, "the first transaction", func() bool { return st.remote.held.Load() == 1 })
		// It is held; the rest queue behind it.
		const n = 131
		for i := 1; i < n; i++ {
			st.invite(room, alice, remoteUser(st.remote, i))
		}
		waitFor(t, "the backlog", func() bool { return st.queued(st.remote.name) == n })
		close(gate)
		waitFor(t, "every invite", func() bool { return len(st.remote.stateKeys()) == n })
		for i, k := range st.remote.stateKeys() {
			if k != remoteUser(st.remote, i) {
				t.Fatalf("PDU %d is for %s, want %s (each once, in order)", i, k, remoteUser(st.remote, i))
			}
		}
		var sizes []int
		for _, txn := range st.remote.received() {
			sizes = append(sizes, len(txn.pdus))
		}
		if want := []int{1, 50, 50, 30}; fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Errorf("transactions of %v PDUs, want %v", sizes, want)
		}
		waitFor(t, "the queue to empty", func() bool { return st.queued(st.remote.name) == 0 })
	})
}

func TestBackoffThenWakeResumesWithCatchUp(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		st.remote.setStatus(http.StatusServiceUnavailable)
		s := st.sender(time.Hour)
		alice := "@alice:" + us
		rooms := []string{st.createRoom(alice), st.createRoom(alice), st.createRoom(alice)}
		st.invite(rooms[0], alice, remoteUser(st.remote, 0))
		waitFor(t, "a backoff", func() bool {
			f, at, err := db.DestinationBackoff(ctx, st.remote.name)
			return err == nil && f == 1 && at > time.Now().Add(50*time.Minute).UnixMilli()
		})
		for i := 1; i <= 60; i++ {
			st.invite(rooms[i%3], alice, remoteUser(st.remote, i))
		}
		waitFor(t, "61 queued", func() bool { return st.queued(st.remote.name) == 61 })
		if got := st.remote.received(); len(got) != 0 {
			t.Fatalf("a down remote received %d transactions", len(got))
		}

		st.remote.setStatus(http.StatusOK)
		s.Wake(st.remote.name)
		waitFor(t, "the catch-up", func() bool { return st.queued(st.remote.name) == 0 })
		// The latest invite of each room only.
		got := st.remote.stateKeys()
		want := []string{remoteUser(st.remote, 58), remoteUser(st.remote, 59), remoteUser(st.remote, 60)}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("caught up with %v, want %v", got, want)
		}
		if f, _, err := db.DestinationBackoff(ctx, st.remote.name); err != nil || f != 0 {
			t.Errorf("backoff after delivery: %d, %v", f, err)
		}
	})
}

func TestPendingQueueSurvivesRestart(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		st.remote.setStatus(http.StatusInternalServerError)
		s := st.sender(300 * time.Millisecond)
		alice := "@alice:" + us
		room := st.createRoom(alice)
		for i := range 3 {
			st.invite(room, alice, remoteUser(st.remote, i))
		}
		waitFor(t, "3 queued and a backoff", func() bool {
			f, _, _ := db.DestinationBackoff(ctx, st.remote.name)
			return st.queued(st.remote.name) == 3 && f > 0
		})
		s.Stop()
		st.remote.setStatus(http.StatusOK)
		st.sender(300 * time.Millisecond)
		waitFor(t, "delivery after the restart", func() bool { return len(st.remote.stateKeys()) == 3 })
		waitFor(t, "the queue to empty", func() bool { return st.queued(st.remote.name) == 0 })
	})
}

func TestRefusedTransactionIsDropped(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		st.remote.setStatus(http.StatusBadRequest)
		st.sender(time.Hour)
		alice := "@alice:" + us
		room := st.createRoom(alice)
		st.invite(room, alice, remoteUser(st.remote, 0))
		waitFor(t, "the refused transaction to be dropped", func() bool {
			return st.remote.attempts() == 1 && st.queued(st.remote.name) == 0
		})
		if f, _, err := db.DestinationBackoff(ctx, st.remote.name); err != nil || f != 0 {
			t.Errorf("a 4xx answer backed off: %d, %v", f, err)
		}
	})
}

func TestOthersEventsAreNotSent(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	st := newStack(t, db)
	s, err := New(Config{DB: st.db, Bus: st.bus, Roomserver: st.rs, Client: st.client, ServerName: us})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(roomserver.OutputEvent{StreamPos: 7, RoomID: "!r:" + st.remote.name, EventID: "$x",
		Type: "m.room.member", StateKey: new("@bob:" + us), Sender: "@mallory:" + st.remote.name, Membership: "invite"})
	if err := s.handle(context.Background(), []*bus.Message{{Data: out}}); err != nil {
		t.Fatal(err)
	}
	dests, err := db.QueueDestinations(context.Background())
	if err != nil || len(dests) != 0 {
		t.Errorf("a received event was queued for %v (%v)", dests, err)
	}
	// A malformed message is skipped: the rest of its batch goes on.
	if err := s.handle(context.Background(), []*bus.Message{{Data: []byte("{")}}); err != nil {
		t.Errorf("a malformed output message failed its batch: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{1, 5 * time.Second}, {2, 10 * time.Second}, {3, 20 * time.Second}, {10, 2560 * time.Second}, {11, time.Hour}, {50, time.Hour}} {
		if got := backoff(5*time.Second, time.Hour, c.failures); got != c.want {
			t.Errorf("backoff after %d failures: %v, want %v", c.failures, got, c.want)
		}
	}
}
