package roomserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

const testServer = "test.local"

// env is a roomserver on a real database and a real embedded bus.
type env struct {
	t    testing.TB
	rs   *Roomserver
	db   *storage.DB
	bus  *bus.Bus
	keys *keys.Ring
	dir  string
	dsn  string
	// remoteKeys, when set, is the roomserver's ServerKeys.
	remoteKeys ServerKeys
}

// forEachDB runs fn with a fresh roomserver on each test database.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, newEnv(t, storagetest.DSN(t, d)))
		})
	}
}

type dsnCase struct {
	name string
	dsn  func(t *testing.T) string
}

// dsnsForTest lists the test databases, each giving a fresh DSN per call.
func dsnsForTest(t *testing.T) []dsnCase {
	var out []dsnCase
	for _, d := range storagetest.Dialects() {
		out = append(out, dsnCase{string(d), func(t *testing.T) string { return storagetest.DSN(t, d) }})
	}
	return out
}

func newEnv(t testing.TB, dsn string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, dsn: dsn}
	var err error
	if e.keys, err = keys.LoadOrGenerate(filepath.Join(dir, "signing.key")); err != nil {
		t.Fatal(err)
	}
	e.open()
	t.Cleanup(e.close)
	return e
}

// open starts the database, the bus and the roomserver.
func (e *env) open() {
	e.t.Helper()
	ctx := context.Background()
	var err error
	if e.db, err = storage.Open(ctx, e.dsn); err != nil {
		e.t.Fatal(err)
	}
	if e.bus, err = bus.Open(ctx, bus.Config{DataDir: e.dir, Namespace: "rstest"}); err != nil {
		e.t.Fatal(err)
	}
	if e.rs, err = New(Deps{DB: e.db, Bus: e.bus, ServerName: testServer, Keys: e.keys, ServerKeys: e.remoteKeys}); err != nil {
		e.t.Fatal(err)
	}
}

// close stops them in the server's order; it may be called twice.
func (e *env) close() {
	if e.rs == nil {
		return
	}
	e.rs.Close()
	e.bus.Close()
	e.db.Close()
	e.rs = nil
}

func (e *env) reopen() {
	e.close()
	e.open()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func user(local string) string { return "@" + local + ":" + testServer }

func strp(s string) *string { return &s }

func content(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stateReq(t testing.TB, sender, evType, stateKey string, c any) EventRequest {
	return EventRequest{Type: evType, StateKey: strp(stateKey), Sender: sender, Content: content(t, c)}
}

func memberReq(t testing.TB, sender, target, membership string) EventRequest {
	return stateReq(t, sender, "m.room.member", target, map[string]any{"membership": membership})
}

func msgReq(t testing.TB, sender, body string) EventRequest {
	return EventRequest{Type: "m.room.message", Sender: sender, Content: content(t, map[string]any{"msgtype": "m.text", "body": body})}
}

// createRoom makes a room as a client's public_chat preset would: create,
// the creator's join, power levels, join rules public, history visibility.
func (e *env) createRoom(ver string, creator string, extra ...EventRequest) (string, []Output) {
	e.t.Helper()
	v, err := pdu.GetRoomVersion(ver)
	if err != nil {
		e.t.Fatal(err)
	}
	initial := []EventRequest{
		memberReq(e.t, creator, creator, "join"),
		stateReq(e.t, creator, "m.room.power_levels", "", map[string]any{"users": map[string]int{creator: 100}}),
		stateReq(e.t, creator, "m.room.join_rules", "", map[string]any{"join_rule": "public"}),
		stateReq(e.t, creator, "m.room.history_visibility", "", map[string]any{"history_visibility": "shared"}),
	}
	if v.PrivilegedCreators {
		// Creators have infinite power in v12 and must not be listed.
		initial[1] = stateReq(e.t, creator, "m.room.power_levels", "", map[string]any{})
	}
	initial = append(initial, extra...)
	roomID, outs, err := e.rs.CreateRoom(ctxT(e.t), CreateRoomRequest{Creator: creator, Version: v, Initial: initial})
	if err != nil {
		e.t.Fatalf("create room v%s: %v", ver, err)
	}
	return roomID, outs
}

func (e *env) send(roomID string, reqs ...EventRequest) []Output {
	e.t.Helper()
	outs, err := e.rs.Send(ctxT(e.t), roomID, reqs...)
	if err != nil {
		e.t.Fatalf("send: %v", err)
	}
	return outs
}

func (e *env) join(roomID, userID string) Output {
	e.t.Helper()
	return e.send(roomID, memberReq(e.t, userID, userID, "join"))[0]
}

// countRows counts a table's rows through a connection of its own (tests
// check that refused input writes nothing).
func (e *env) countRows(table string) int {
	e.t.Helper()
	driver, dsn := "postgres", e.dsn
	if strings.HasPrefix(dsn, "sqlite:") {
		driver, dsn = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func mustJSON(t testing.TB, raw []byte, path string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(m[path])
}
