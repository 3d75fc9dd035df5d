package syncapi_test

import (
	"log/slog"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/clientapi"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/syncapi"
)

// TestSecondProcess runs a second sync API on the same database and bus,
// as a second process of a distributed deployment would: a client whose
// long-poll it holds must be woken by messages, typing and receipts made
// through the first.
func TestSecondProcess(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	api2, err := syncapi.New(syncapi.Deps{
		DB: s.DB(), Bus: s.Bus(), Auth: clientapi.NewAuthenticator(s.DB(), s.Config()), ServerName: s.Name,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api2.Close)
	router := httputil.NewRouter()
	api2.Register(router)
	hs := httptest.NewServer(httputil.Wrap(router, httputil.Options{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(hs.Close)

	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	// bob's syncs go to the second process.
	bob2 := &user{s: &servertest.Server{Server: s.Server, ClientURL: hs.URL, Client: s.Client}, id: bob.id, token: bob.token}
	since := bob2.sync(t, quiet).Get("next_batch").Str

	ch := bob2.waitSync(t, since)
	sent := time.Now()
	msg := alice.send(t, roomID, "through the first process")
	r := receive(t, ch, "a message written by the first process")
	if !slices.Contains(timelineIDs(r.res, "join", roomID), msg) {
		t.Fatalf("second process: %s", r.res.Raw)
	}
	t.Logf("message reached the second process's long-poll in %v", r.at.Sub(sent))

	ch = bob2.waitSync(t, r.res.Get("next_batch").Str)
	alice.ok(t, "PUT", room(roomID)+"/typing/"+url.PathEscape(alice.id), map[string]any{"typing": true})
	r = receive(t, ch, "typing set through the first process")
	if users := ephemeral(r.res, roomID, "m.typing").Get("content.user_ids").Array(); len(users) != 1 {
		t.Fatalf("second process typing: %s", r.res.Raw)
	}

	ch = bob2.waitSync(t, r.res.Get("next_batch").Str)
	alice.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(msg), map[string]any{})
	r = receive(t, ch, "a receipt written through the first process")
	if !ephemeral(r.res, roomID, "m.receipt").Exists() {
		t.Fatalf("second process receipt: %s", r.res.Raw)
	}

	// A token from the first process works on the second: typing is sent
	// whole, since the typing serials of two processes differ.
	tok := bob.sync(t, quiet).Get("next_batch").Str
	res := bob2.sync(t, params("since", tok))
	if users := ephemeral(res, roomID, "m.typing").Get("content.user_ids").Array(); len(users) != 1 {
		t.Errorf("token from another process: typing %s", res.Raw)
	}
}
