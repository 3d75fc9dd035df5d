package search

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

const us = "us.test"

// stack is a database, a bus and a roomserver to write rooms with.
type stack struct {
	t    *testing.T
	db   *storage.DB
	bus  *bus.Bus
	rs   *roomserver.Roomserver
	ring *keys.Ring
	dir  string
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
	return &stack{t: t, db: db, bus: b, rs: rs, ring: ring, dir: dir}
}

func (st *stack) open() *Index {
	st.t.Helper()
	ix, err := Open(context.Background(), Config{DB: st.db, Bus: st.bus, Path: filepath.Join(st.dir, "search.bleve"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		st.t.Fatal(err)
	}
	return ix
}

// reopenEmpty closes ix, deletes the index's directory and opens the
// index again, which rebuilds it from the database.
func (st *stack) reopenEmpty(ix *Index) *Index {
	st.t.Helper()
	if err := ix.Close(); err != nil {
		st.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(st.dir, "search.bleve")); err != nil {
		st.t.Fatal(err)
	}
	return st.open()
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
			st.event(creator, "m.room.member", &creator, map[string]any{"membership": "join"}),
			st.event(creator, "m.room.power_levels", new(string), pl),
		}})
	if err != nil {
		st.t.Fatal(err)
	}
	return roomID
}

func (st *stack) event(sender, typ string, stateKey *string, content any) roomserver.EventRequest {
	raw, err := json.Marshal(content)
	if err != nil {
		st.t.Fatal(err)
	}
	return roomserver.EventRequest{Type: typ, StateKey: stateKey, Sender: sender, Content: raw}
}

func (st *stack) send(roomID, sender, body string) string {
	st.t.Helper()
	outs, err := st.rs.Send(context.Background(), roomID,
		st.event(sender, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": body}))
	if err != nil {
		st.t.Fatal(err)
	}
	return outs[0].Event.EventID()
}

// find searches the whole room for term, newest first.
func find(t *testing.T, ix *Index, db *storage.DB, roomID, term string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pos, err := db.StreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.WaitFor(ctx, pos); err != nil {
		t.Fatalf("the index did not reach position %d (at %d): %v", pos, ix.Pos(), err)
	}
	res, err := ix.Search(ctx, Query{Term: ParseTerm(term), Recent: true, Limit: 100,
		Rooms: []Room{{RoomID: roomID, Visible: storage.AllPositions}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range res.Hits {
		ids = append(ids, h.EventID)
	}
	return ids
}

// TestIndexRebuildAndResume: the index follows new events, resumes after a
// stop from where it was, and is rebuilt from the database when its
// directory is deleted.
func TestIndexRebuildAndResume(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		st := newStack(t, db)
		alice := "@alice:" + us
		roomID := st.createRoom(alice)
		first := st.send(roomID, alice, "the first walrus")

		ix := st.open()
		if got := find(t, ix, db, roomID, "walrus"); !slices.Equal(got, []string{first}) {
			t.Fatalf("after the first build: %v", got)
		}
		second := st.send(roomID, alice, "a second walrus")
		if got := find(t, ix, db, roomID, "walrus"); !slices.Equal(got, []string{second, first}) {
			t.Fatalf("following: %v", got)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}

		// Sent while no index runs: found after a restart, from the
		// stored position.
		third := st.send(roomID, alice, "a third walrus")
		ix = st.open()
		if got := find(t, ix, db, roomID, "walrus"); !slices.Equal(got, []string{third, second, first}) {
			t.Fatalf("after a restart: %v", got)
		}
		// The directory deleted: rebuilt from the database.
		ix = st.reopenEmpty(ix)
		defer ix.Close()
		if got := find(t, ix, db, roomID, "walrus"); !slices.Equal(got, []string{third, second, first}) {
			t.Fatalf("after a rebuild: %v", got)
		}
	})
}

func TestParseTerm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Parsed
	}{
		{"martians and men", Parsed{Must: [][]Term{{{Text: "martians"}}, {{Text: "and"}}, {{Text: "men"}}}}},
		{`"war of the worlds" -tripods`, Parsed{Must: [][]Term{{{Text: "war of the worlds", Phrase: true}}},
			MustNot: []Term{{Text: "tripods"}}}},
		{"cats OR dogs food", Parsed{Must: [][]Term{{{Text: "cats"}, {Text: "dogs"}}, {{Text: "food"}}}}},
		{"or leading and trailing or", Parsed{Must: [][]Term{{{Text: "leading"}}, {{Text: "and"}}, {{Text: "trailing"}}}}},
		{`"unclosed phrase`, Parsed{Must: [][]Term{{{Text: "unclosed phrase", Phrase: true}}}}},
		{`  - "" `, Parsed{}},
	} {
		if got := ParseTerm(tc.in); !equalParsed(got, tc.want) {
			t.Errorf("ParseTerm(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func equalParsed(a, b Parsed) bool {
	if len(a.Must) != len(b.Must) || !slices.Equal(a.MustNot, b.MustNot) {
		return false
	}
	for i := range a.Must {
		if !slices.Equal(a.Must[i], b.Must[i]) {
			return false
		}
	}
	return true
}

// FuzzParseTerm: any input parses, within the limits, into non-empty
// terms.
func FuzzParseTerm(f *testing.F) {
	for _, s := range []string{"martians and men", `"a b" -c OR d`, `"`, "-", "OR OR OR", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := ParseTerm(s)
		n := len(p.MustNot)
		check := func(term Term) {
			if term.Text == "" || len(term.Text) > maxTermLength {
				t.Fatalf("term %q from %q", term.Text, s)
			}
		}
		for _, c := range p.Must {
			if len(c) == 0 {
				t.Fatalf("empty clause from %q", s)
			}
			for _, term := range c {
				check(term)
				n++
			}
		}
		for _, term := range p.MustNot {
			check(term)
		}
		if n > maxTerms {
			t.Fatalf("%d terms from %q", n, s)
		}
	})
}
