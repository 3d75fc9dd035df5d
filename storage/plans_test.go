package storage_test

// Plans of the reads whose cost must not grow with the size of a room's
// history or of a whole table: each is checked to use the index that
// bounds it by what it returns. SQLite only: PostgreSQL picks plans from
// statistics, and Myelin's SQLite databases have none (no ANALYZE), so the
// plan on an empty database is the plan on a full one.

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// checkPlan fails unless query's plan names every one of want and none of
// notWant (index names, or "SCAN <table>").
func checkPlan(t *testing.T, db *storage.DB, query string, args []any, want, notWant []string) {
	t.Helper()
	plan, err := db.QueryPlan(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(plan, w) {
			t.Errorf("plan does not use %s:\n%s", w, plan)
		}
	}
	for _, n := range notWant {
		if strings.Contains(plan, n) {
			t.Errorf("plan uses %s:\n%s", n, plan)
		}
	}
}

// The history visibility and membership changes that every /sync and
// /messages page reads are found through events_room_state_key, not by
// walking the room's events (which made each read cost the size of the
// room's history).
func TestVisibilityEventsPlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	checkPlan(t, db, storage.VisibilityEventsQuery, []any{1, "@a:x", 100},
		[]string{"events_room_state_key"}, []string{"events_room_stream"})
}

// Search reads the history visibility and membership changes of all the
// user's rooms at once; each room's are looked up by state key, whatever
// the number of rooms, rather than found by walking the room's events.
func TestVisibilityEventsOfRoomsPlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	for _, n := range []int{1, 3, 50, 500} {
		args := []any{"@a:x", 100}
		for i := range n {
			args = append(args, i+1)
		}
		checkPlan(t, db, storage.VisibilityEventsOfRoomsQuery(n), args,
			[]string{"events_room_state_key"}, []string{"events_room_stream", "TEMP B-TREE"})
	}
}

// A room's current state at given keys (the roomserver's auth events, a
// user's membership checked by every room request, lazy-loaded members)
// is found by primary key, not by reading the room's whole state.
func TestCurrentStateByKeyPlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	for _, n := range []int{1, 4, 250} {
		args := []any{1}
		for i := range n {
			args = append(args, "m.room.member", "@u"+strconv.Itoa(i)+":x")
		}
		checkPlan(t, db, storage.CurrentStateEventsQuery(n), args,
			[]string{"sqlite_autoindex_room_state_1 (room_nid=? AND state_key_nid=?)"}, nil)
	}
	for _, n := range []int{1, 2, 500} {
		args := []any{1}
		for i := range n {
			args = append(args, "@u"+strconv.Itoa(i)+":x")
		}
		checkPlan(t, db, storage.SyncMembersQuery(n), args,
			[]string{"sqlite_autoindex_room_state_1 (room_nid=? AND state_key_nid=?)"}, nil)
	}
}

// The state events of a sync gap and the member events of an incremental
// sync's window are read from events_room_state_stream, without walking
// the window's messages (events_room_stream).
func TestSyncWindowStatePlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	checkPlan(t, db, storage.SyncStateEventsQuery, []any{1, 10, 100},
		[]string{"events_room_state_stream (room_nid=? AND stream_pos>? AND stream_pos<?)"},
		[]string{"events_room_stream"})
	checkPlan(t, db, storage.SyncE2EEQuery, []any{"@a:x", "D", 10, 100},
		[]string{"events_room_state_stream (room_nid=? AND stream_pos>? AND stream_pos<?)"},
		[]string{"events_room_stream"})
}

// Spending a refresh token finds the tokens that name it by index, not by
// reading every access and refresh token of the server.
func TestClearSupersededPlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	for _, q := range storage.ClearSupersededStatements {
		checkPlan(t, db, q, []any{5}, []string{"SEARCH"}, []string{"SCAN"})
	}
}

// /notifications?only=highlight pages through the user's highlighted
// notifications alone, not through all of them.
func TestHighlightNotificationsPlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	checkPlan(t, db, storage.NotificationsQuery(false, true, 20), []any{"@a:x"},
		[]string{"push_notifications_highlight (user_id=?)"}, []string{"TEMP B-TREE"})
	checkPlan(t, db, storage.NotificationsQuery(true, true, 20), []any{"@a:x", 100},
		[]string{"push_notifications_highlight (user_id=? AND event_pos<?)"}, []string{"TEMP B-TREE"})
}

// A page of an event's children (/relations, a thread's replies) walks
// them in stream order from the page's start and stops at the limit,
// rather than collecting and sorting all of them for every page.
func TestRelationsPagePlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	visible := []storage.PosRange{{After: 0, Upto: 50}, {After: 60, Upto: 100}}
	for _, q := range []storage.RelationsQuery{
		{RoomNID: 1, Parent: "$p", Depth: 1, Visible: storage.AllPositions, From: 100, To: 0, Backwards: true, Limit: 21},
		{RoomNID: 1, Parent: "$p", Depth: 1, RelType: "m.thread", Visible: visible, NotSenders: []string{"@i:x"},
			From: 0, To: 100, Limit: 21},
		{RoomNID: 1, Parent: "$p", Depth: 1, RelType: "m.annotation", EventType: "m.reaction", Visible: visible,
			From: 100, To: 0, Backwards: true, Limit: 21},
	} {
		query, args := storage.RelationsPageQuery(q)
		checkPlan(t, db, query, args, []string{"event_relations_parent"}, []string{"TEMP B-TREE"})
	}
}

// The user directory finds the public and world-readable rooms from the
// join rules and history visibility events, not by reading every room's
// whole current state (every member of every room).
func TestOpenRoomStatePlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	checkPlan(t, db, storage.OpenRoomStateQuery, nil,
		[]string{"events_state_key_stream", "sqlite_autoindex_room_state_1"}, []string{"SCAN"})
}

// A lazy-loading sync's state other than member events is chosen from the
// room's state entries and their keys' types before any event is read,
// not by reading the event of every member of the room.
func TestSyncStateWithoutMembersPlan(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	checkPlan(t, db, storage.SyncStateWithoutMembersQuery, []any{1},
		[]string{"LIST SUBQUERY", "sqlite_autoindex_room_state_1 (room_nid=?)"}, []string{"SCAN"})
}
