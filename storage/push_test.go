package storage_test

// Tests of the push tables: notifications and their read state, pushers
// and their queue.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestPushNotifications(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const room = "!r:x"
		notify := func(users ...string) []storage.PushNotify {
			var out []storage.PushNotify
			for _, u := range users {
				out = append(out, storage.PushNotify{UserID: u, Actions: []byte(`["notify"]`), Highlight: u == "@hi:x"})
			}
			return out
		}
		record := func(pe storage.PushEvent) storage.PushRecorded {
			t.Helper()
			got, err := recordPush(ctx, db, pe)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		counts := func(user string, upto int64) map[string][2]int {
			t.Helper()
			cs, err := unreadCounts(ctx, db, user, upto)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][2]int{}
			for _, c := range cs {
				out[c.RoomID+"/"+c.ThreadID] = [2]int{c.Notifications, c.Highlights}
			}
			return out
		}
		// Three events for @a and @hi (highlighted); the third in a thread.
		record(storage.PushEvent{RoomID: room, EventID: "$1", EventPos: 10, ThreadID: "main", TS: 1, Notify: notify("@a:x", "@hi:x")})
		record(storage.PushEvent{RoomID: room, EventID: "$2", EventPos: 12, ThreadID: "main", TS: 2, Notify: notify("@a:x", "@hi:x")})
		record(storage.PushEvent{RoomID: room, EventID: "$3", EventPos: 14, ThreadID: "$1", TS: 3, Notify: notify("@a:x")})
		if got := counts("@a:x", 100); got[room+"/main"] != [2]int{2, 0} || got[room+"/$1"] != [2]int{1, 0} {
			t.Errorf("counts of @a: %v", got)
		}
		if got := counts("@hi:x", 100); got[room+"/main"] != [2]int{2, 2} {
			t.Errorf("counts of @hi: %v", got)
		}
		if got := counts("@a:x", 12); got[room+"/$1"] != [2]int{} || got[room+"/main"] != [2]int{2, 0} {
			t.Errorf("counts of @a up to 12: %v", got)
		}

		// A threaded receipt on the main timeline at $1 clears $1 only.
		mark := func(user, thread string, eventPos int64) bool {
			t.Helper()
			var changed bool
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				pos, err := tx.NextStreamPos(ctx)
				if err != nil {
					return err
				}
				changed, err = tx.MarkNotificationsRead(ctx, user, room, thread, eventPos, pos, 5)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return changed
		}
		// Counts take their last event's position; a receipt's read takes
		// the receipt's.
		if changed, err := roomsChanged(ctx, db, "@a:x", 13); err != nil || !slices.Equal(changed, []string{room}) {
			t.Errorf("rooms changed at 14: %v %v", changed, err)
		}
		if changed, _ := roomsChanged(ctx, db, "@a:x", 14); len(changed) != 0 {
			t.Errorf("rooms changed after 14: %v", changed)
		}
		// Both at once, as /sync reads them.
		if cs, changed, err := db.UnreadState(ctx, "@a:x", 13, 12); err != nil || len(cs) != 1 ||
			cs[0] != (storage.UnreadCount{RoomID: room, ThreadID: "main", Notifications: 2}) || !slices.Equal(changed, []string{room}) {
			t.Errorf("unread state since 13 up to 12: %+v %v %v", cs, changed, err)
		}
		// The stream moves on (the events' positions are made up here).
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for range 100 {
				if _, err := tx.NextStreamPos(ctx); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		before, _ := db.StreamPos(ctx)
		if !mark("@a:x", "main", 10) {
			t.Fatal("marking $1 read changed nothing")
		}
		if got := counts("@a:x", 100); got[room+"/main"] != [2]int{1, 0} || got[room+"/$1"] != [2]int{1, 0} {
			t.Errorf("after a main receipt at $1: %v", got)
		}
		if mark("@a:x", "main", 10) {
			t.Error("marking again changed something")
		}
		changed, err := roomsChanged(ctx, db, "@a:x", before)
		if err != nil || !slices.Equal(changed, []string{room}) {
			t.Errorf("rooms changed since the receipt: %v %v", changed, err)
		}
		// An unthreaded receipt at $3 clears every thread.
		mark("@a:x", "", 14)
		if got := counts("@a:x", 100); len(got) != 0 {
			t.Errorf("after an unthreaded receipt: %v", got)
		}
		if n, err := db.UnreadTotal(ctx, "@hi:x"); err != nil || n != 2 {
			t.Errorf("unread total of @hi: %d %v", n, err)
		}

		record(storage.PushEvent{RoomID: room, EventID: "$4", EventPos: 16, ThreadID: "main", TS: 4, Notify: notify("@hi:x", "@a:x")})
		if got := counts("@hi:x", 100); got[room+"/main"] != [2]int{3, 3} {
			t.Errorf("counts of @hi after $4: %v", got)
		}
		// Sending counts as reading: @a sends $5.
		record(storage.PushEvent{RoomID: room, EventID: "$5", EventPos: 18, ThreadID: "main", TS: 5, LocalSender: "@a:x"})
		if got := counts("@a:x", 100); len(got) != 0 {
			t.Errorf("counts of @a after sending: %v", got)
		}

		// /notifications: newest first, paginated, highlights only.
		all, err := db.Notifications(ctx, "@hi:x", 0, 10, false)
		if err != nil || len(all) != 3 || all[0].EventID != "$4" || all[0].Read || all[2].EventID != "$1" || all[2].Read {
			t.Fatalf("notifications of @hi: %+v %v", all, err)
		}
		if read, err := db.Notifications(ctx, "@a:x", 0, 10, false); err != nil || len(read) != 4 || !read[3].Read {
			t.Fatalf("notifications of @a, all read: %+v %v", read, err)
		}
		page, err := db.Notifications(ctx, "@a:x", 14, 1, false)
		if err != nil || len(page) != 1 || page[0].EventID != "$2" {
			t.Errorf("page before 14: %+v %v", page, err)
		}
		if hl, err := db.Notifications(ctx, "@a:x", 0, 10, true); err != nil || len(hl) != 0 {
			t.Errorf("highlights of @a: %+v %v", hl, err)
		}
	})
}

func TestPushers(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		p := storage.Pusher{UserID: "@a:x", AppID: "app", Pushkey: "key", Kind: "http", AppDisplayName: "App",
			DeviceDisplayName: "Phone", Lang: "en", Data: []byte(`{"url":"https://gw/_matrix/push/v1/notify"}`),
			URL: "https://gw/_matrix/push/v1/notify", DeviceID: "DEV", PushkeyTS: 1000}
		if err := db.SetPusher(ctx, p, false); err != nil {
			t.Fatal(err)
		}
		// The same device for another user: replaces @a's unless appended.
		other := p
		other.UserID = "@b:x"
		if err := db.SetPusher(ctx, other, true); err != nil {
			t.Fatal(err)
		}
		if ps, _ := db.Pushers(ctx, "@a:x"); len(ps) != 1 {
			t.Fatalf("append removed @a's pusher: %v", ps)
		}
		if err := db.SetPusher(ctx, other, false); err != nil {
			t.Fatal(err)
		}
		if ps, _ := db.Pushers(ctx, "@a:x"); len(ps) != 0 {
			t.Fatalf("@a's pusher survived @b taking the pushkey: %v", ps)
		}
		if err := db.SetPusher(ctx, p, true); err != nil {
			t.Fatal(err)
		}
		ps, err := db.Pushers(ctx, "@a:x")
		if err != nil || len(ps) != 1 || ps[0].Lang != "en" || string(ps[0].Data) != string(p.Data) {
			t.Fatalf("pushers of @a: %+v %v", ps, err)
		}
		id := ps[0].ID

		// A notification queues a push for @a's pusher and not for @c,
		// who has none.
		rec, err := recordPush(ctx, db, storage.PushEvent{RoomID: "!r:x", EventID: "$1", EventPos: 5, ThreadID: "main", TS: 77,
			Notify: []storage.PushNotify{
				{UserID: "@a:x", Actions: []byte(`["notify"]`), Tweaks: []byte(`{"sound":"default"}`)},
				{UserID: "@c:x", Actions: []byte(`["notify"]`), Tweaks: []byte(`{}`)},
			}})
		if err != nil || !slices.Equal(rec.Pushers, []int64{id}) {
			t.Fatalf("RecordPush queued for %v, %v", rec.Pushers, err)
		}
		q, err := db.QueuedPushes(ctx, id, 10)
		if err != nil || len(q) != 1 || q[0].EventID != "$1" || string(q[0].Tweaks) != `{"sound":"default"}` || q[0].CreatedTS != 77 {
			t.Fatalf("queue: %+v %v", q, err)
		}
		if ids, err := db.PushersWithQueue(ctx); err != nil || !slices.Equal(ids, []int64{id}) {
			t.Errorf("pushers with a queue: %v %v", ids, err)
		}
		// A read receipt queues one count update, however many.
		for range 2 {
			err = db.WithTx(ctx, func(tx *storage.Tx) error {
				pos, err := tx.NextStreamPos(ctx)
				if err != nil {
					return err
				}
				_, err = tx.MarkNotificationsRead(ctx, "@a:x", "!r:x", "", 5, pos, 88)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		q, _ = db.QueuedPushes(ctx, id, 10)
		if len(q) != 2 || q[1].EventID != "" {
			t.Fatalf("queue after the receipt: %+v", q)
		}
		if err := db.DeleteQueuedPush(ctx, q[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := db.SetPusherBackoff(ctx, id, 3, 12345); err != nil {
			t.Fatal(err)
		}
		got, err := db.PusherByID(ctx, id)
		if err != nil || got.Failures != 3 || got.RetryAtTS != 12345 {
			t.Errorf("backoff: %+v %v", got, err)
		}
		// Setting the pusher again clears the backoff.
		if err := db.SetPusher(ctx, p, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.PusherByID(ctx, id); got.Failures != 0 {
			t.Errorf("backoff after set: %+v", got)
		}
		// Deleting the pusher drops its queue.
		if err := db.DeletePusherByID(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PusherByID(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted pusher: %v", err)
		}
		if q, _ := db.QueuedPushes(ctx, id, 10); len(q) != 0 {
			t.Errorf("queue of a deleted pusher: %+v", q)
		}
		if ok, err := db.DeletePusher(ctx, "@b:x", "app", "key"); !ok || err != nil {
			t.Errorf("DeletePusher: %v %v", ok, err)
		}
		if ok, _ := db.DeletePusher(ctx, "@b:x", "app", "key"); ok {
			t.Error("deleted twice")
		}
	})
}

// A batch in stream order: a user's own event reads what an earlier event
// of the same batch notified them of.
func TestRecordPushesBatch(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		notify := []storage.PushNotify{{UserID: "@b:x", Actions: []byte(`["notify"]`)}}
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			out, err := tx.RecordPushes(ctx, []storage.PushEvent{
				{RoomID: "!r:x", EventID: "$1", EventPos: 1, ThreadID: "main", TS: 1, Notify: notify},
				{RoomID: "!s:x", EventID: "$2", EventPos: 2, ThreadID: "main", TS: 2, Notify: notify},
				{RoomID: "!r:x", EventID: "$3", EventPos: 3, ThreadID: "main", TS: 3, LocalSender: "@b:x"},
			})
			if err == nil && len(out) != 3 {
				t.Errorf("RecordPushes: %+v", out)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		counts, err := unreadCounts(ctx, db, "@b:x", 10)
		if err != nil || len(counts) != 1 || counts[0].RoomID != "!s:x" {
			t.Fatalf("counts: %+v %v", counts, err)
		}
	})
}

func TestPushRulesOf(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, ad := range []struct{ user, room, typ, content string }{
				{"@a:x", "", "m.push_rules", `{"global":{}}`},
				{"@a:x", "", "m.ignored_user_list", `{"ignored_users":{}}`},
				{"@a:x", "!r:x", "m.push_rules", `{"no":"room data"}`},
				{"@b:x", "", "m.other", `{}`},
			} {
				if _, err := tx.SetAccountData(ctx, ad.user, ad.room, ad.typ, []byte(ad.content)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.PushRulesOf(ctx, []string{"@a:x", "@b:x", "@c:x"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got["@a:x"]["m.push_rules"]) != `{"global":{}}` || got["@a:x"]["m.ignored_user_list"] == nil {
			t.Errorf("PushRulesOf = %v", got)
		}
	})
}

// unreadCounts and roomsChanged are the two halves of UnreadState.
func unreadCounts(ctx context.Context, db *storage.DB, user string, upto int64) ([]storage.UnreadCount, error) {
	counts, _, err := db.UnreadState(ctx, user, math.MaxInt64, upto)
	return counts, err
}

func roomsChanged(ctx context.Context, db *storage.DB, user string, since int64) ([]string, error) {
	_, changed, err := db.UnreadState(ctx, user, since, math.MaxInt64)
	return changed, err
}

// recordPush records one event's notifications in a transaction of its
// own (the roomserver's, in the server).
func recordPush(ctx context.Context, db *storage.DB, pe storage.PushEvent) (storage.PushRecorded, error) {
	var out []storage.PushRecorded
	err := db.WithTx(ctx, func(tx *storage.Tx) error {
		var err error
		out, err = tx.RecordPushes(ctx, []storage.PushEvent{pe})
		return err
	})
	if err != nil {
		return storage.PushRecorded{}, err
	}
	return out[0], nil
}

// Migration 0019 turns notifications stored with read flags into counts
// and read positions per user, room and thread.
func TestPushUnreadMigration(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		// Back to the table of migrations 0015–0018, with rows in it:
		// @a read $1 and $2 of the main timeline; $3 (main, highlighted)
		// and $4 (thread $1) are unread; @b read nothing.
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, stmt := range []string{
				`DROP TABLE push_unread`,
				`DROP TABLE push_notifications`,
				`CREATE TABLE push_notifications (user_id TEXT NOT NULL, event_pos BIGINT NOT NULL,
					room_id TEXT NOT NULL, event_id TEXT NOT NULL, thread_id TEXT NOT NULL, actions TEXT NOT NULL,
					highlight BOOLEAN NOT NULL, ts BIGINT NOT NULL, is_read BOOLEAN NOT NULL, stream_pos BIGINT NOT NULL,
					PRIMARY KEY (user_id, event_pos))`,
				`INSERT INTO push_notifications VALUES
					('@a:x', 1, '!r:x', '$1', 'main', '["notify"]', FALSE, 1, TRUE, 20),
					('@a:x', 2, '!r:x', '$2', 'main', '["notify"]', FALSE, 2, TRUE, 20),
					('@a:x', 3, '!r:x', '$3', 'main', '["notify"]', TRUE, 3, FALSE, 3),
					('@a:x', 4, '!r:x', '$4', '$1', '["notify"]', FALSE, 4, FALSE, 4),
					('@b:x', 1, '!r:x', '$1', 'main', '["notify"]', FALSE, 1, FALSE, 1)`,
				`DELETE FROM schema_migrations WHERE version >= 19`,
			} {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", stmt, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, migrationsUpTo(t, 19)); err != nil {
			t.Fatal(err)
		}
		counts, err := unreadCounts(ctx, db, "@a:x", 100)
		slices.SortFunc(counts, func(a, b storage.UnreadCount) int { return strings.Compare(a.ThreadID, b.ThreadID) })
		want := []storage.UnreadCount{
			{RoomID: "!r:x", ThreadID: "$1", Notifications: 1},
			{RoomID: "!r:x", ThreadID: "main", Notifications: 1, Highlights: 1},
		}
		if err != nil || !slices.Equal(counts, want) {
			t.Errorf("counts of @a: %+v %v, want %+v", counts, err, want)
		}
		ns, err := db.Notifications(ctx, "@a:x", 0, 10, false)
		if err != nil || len(ns) != 4 || ns[0].Read || ns[1].Read || !ns[2].Read || !ns[3].Read {
			t.Errorf("notifications of @a: %+v %v", ns, err)
		}
		if n, err := db.UnreadTotal(ctx, "@b:x"); err != nil || n != 1 {
			t.Errorf("unread total of @b: %d %v", n, err)
		}
		if rooms, err := roomsChanged(ctx, db, "@a:x", 19); err != nil || !slices.Equal(rooms, []string{"!r:x"}) {
			t.Errorf("rooms changed after 19: %v %v", rooms, err)
		}
		// A receipt at $3 leaves $4, in its thread, unread.
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.MarkNotificationsRead(ctx, "@a:x", "!r:x", "", 3, 30, 5)
			return err
		})
		if total, terr := db.UnreadTotal(ctx, "@a:x"); err != nil || terr != nil || total != 1 {
			t.Errorf("unread total of @a after a receipt at $3: %d %v %v", total, err, terr)
		}
	})
}

// Read notifications older than the cut are pruned; unread ones stay.
func TestPruneNotifications(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		n := []storage.PushNotify{{UserID: "@a:x", Actions: []byte(`["notify"]`)}}
		for i, ts := range []int64{100, 200, 300, 400} {
			if _, err := recordPush(ctx, db, storage.PushEvent{RoomID: "!r:x", EventID: fmt.Sprint("$", i+1),
				EventPos: int64(i + 1), ThreadID: "main", TS: ts, Notify: n}); err != nil {
				t.Fatal(err)
			}
		}
		// $1 and $2 are read; $3 and $4 not.
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.MarkNotificationsRead(ctx, "@a:x", "!r:x", "", 2, 10, 5)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// Made before 350: $1 and $2 (read) go, one per call; $3 stays.
		for i, want := range []int{1, 1, 0} {
			if got, err := db.PruneNotifications(ctx, 350, 1); err != nil || got != want {
				t.Fatalf("prune %d: %d %v, want %d", i, got, err, want)
			}
		}
		ns, err := db.Notifications(ctx, "@a:x", 0, 10, false)
		if err != nil || len(ns) != 2 || ns[0].EventID != "$4" || ns[1].EventID != "$3" {
			t.Errorf("notifications after pruning: %+v %v", ns, err)
		}
		if counts, err := unreadCounts(ctx, db, "@a:x", 100); err != nil || len(counts) != 1 || counts[0].Notifications != 2 {
			t.Errorf("counts after pruning: %+v %v", counts, err)
		}
	})
}

// A user's own event reads their notifications: their pushers get a count
// update when something was unread, and none when nothing was.
func TestSendingQueuesCountPush(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		p := storage.Pusher{UserID: "@a:x", AppID: "app", Pushkey: "key", Kind: "http", AppDisplayName: "App",
			DeviceDisplayName: "Phone", Lang: "en", Data: []byte(`{}`), URL: "https://gw/_matrix/push/v1/notify",
			DeviceID: "DEV", PushkeyTS: 1}
		if err := db.SetPusher(ctx, p, false); err != nil {
			t.Fatal(err)
		}
		ps, err := db.Pushers(ctx, "@a:x")
		if err != nil || len(ps) != 1 {
			t.Fatalf("pushers: %v %v", ps, err)
		}
		id := ps[0].ID
		countPushes := func() int {
			t.Helper()
			q, err := db.QueuedPushes(ctx, id, 10)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, qp := range q {
				if qp.EventID == "" {
					n++
					if err := db.DeleteQueuedPush(ctx, qp.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			return n
		}
		send := func(pos int64) storage.PushRecorded {
			t.Helper()
			rec, err := recordPush(ctx, db, storage.PushEvent{RoomID: "!r:x", EventID: fmt.Sprint("$", pos), EventPos: pos,
				ThreadID: "main", TS: pos, LocalSender: "@a:x"})
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}
		if rec := send(1); len(rec.Pushers) != 0 || countPushes() != 0 {
			t.Errorf("sending with nothing unread queued a count update: %+v", rec)
		}
		if _, err := recordPush(ctx, db, storage.PushEvent{RoomID: "!r:x", EventID: "$2", EventPos: 2, ThreadID: "main", TS: 2,
			Notify: []storage.PushNotify{{UserID: "@a:x", Actions: []byte(`["notify"]`)}}}); err != nil {
			t.Fatal(err)
		}
		if rec := send(3); !slices.Equal(rec.Pushers, []int64{id}) || countPushes() != 1 {
			t.Errorf("sending after a notification: pushers %v", rec.Pushers)
		}
		if n, err := db.UnreadTotal(ctx, "@a:x"); err != nil || n != 0 {
			t.Errorf("unread after sending: %d %v", n, err)
		}
	})
}

// A redaction's Withdraws deletes its event's notifications and takes the
// unread ones off their counts, also for an event of the same batch; a
// notification already read comes off no count.
func TestWithdrawNotifications(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const room = "!r:x"
		// Whoever is notified is a member of the room (@b has left since).
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			nid, err := tx.InsertRoom(ctx, room, "11")
			if err != nil {
				return err
			}
			if err := tx.SetMembership(ctx, nid, "@a:x", "join", 1); err != nil {
				return err
			}
			return tx.SetMembership(ctx, nid, "@b:x", "leave", 2)
		}); err != nil {
			t.Fatal(err)
		}
		both := []storage.PushNotify{{UserID: "@a:x", Actions: []byte(`["notify"]`), Highlight: true},
			{UserID: "@b:x", Actions: []byte(`["notify"]`)}}
		ev := func(id string, pos int64) storage.PushEvent {
			return storage.PushEvent{RoomID: room, EventID: id, EventPos: pos, ThreadID: "main", TS: pos, Notify: both}
		}
		redaction := func(id string, pos, withdraws int64) storage.PushEvent {
			return storage.PushEvent{RoomID: room, EventID: id, EventPos: pos, ThreadID: "main", TS: pos, Withdraws: withdraws}
		}
		record := func(pes ...storage.PushEvent) {
			t.Helper()
			if err := db.WithTx(ctx, func(tx *storage.Tx) error {
				_, err := tx.RecordPushes(ctx, pes)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		check := func(user string, wantN, wantH int, wantIDs ...string) {
			t.Helper()
			cs, err := unreadCounts(ctx, db, user, 1000)
			if err != nil {
				t.Fatal(err)
			}
			n, h := 0, 0
			for _, c := range cs {
				n, h = n+c.Notifications, h+c.Highlights
			}
			ns, err := db.Notifications(ctx, user, 0, 10, false)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, x := range ns {
				ids = append(ids, x.EventID)
			}
			if n != wantN || h != wantH || !slices.Equal(ids, wantIDs) {
				t.Errorf("%s: counts %d, %d and notifications %v; want %d, %d and %v", user, n, h, ids, wantN, wantH, wantIDs)
			}
		}

		record(ev("$1", 10), ev("$2", 11), ev("$3", 12))
		// @b reads up to $1 by sending $4.
		record(storage.PushEvent{RoomID: room, EventID: "$4", EventPos: 13, ThreadID: "main", TS: 13, LocalSender: "@b:x"})
		check("@a:x", 3, 3, "$3", "$2", "$1")
		check("@b:x", 0, 0, "$3", "$2", "$1")

		// The redaction of $2, unread for @a and read for @b (positions
		// are made up here).
		const before = 19
		record(redaction("$r1", before+1, 11))
		check("@a:x", 2, 2, "$3", "$1")
		check("@b:x", 0, 0, "$3", "$1")
		if changed, err := roomsChanged(ctx, db, "@a:x", before); err != nil || !slices.Equal(changed, []string{room}) {
			t.Errorf("rooms changed for @a by the redaction: %v %v", changed, err)
		}

		// An event and its redaction in one batch.
		record(ev("$5", before+2), redaction("$r2", before+3, before+2))
		check("@a:x", 2, 2, "$3", "$1")
		// A redaction of an event without notifications changes nothing.
		record(redaction("$r3", before+4, 99))
		check("@a:x", 2, 2, "$3", "$1")
	})
}
