package storage

// Queries on push_notifications (migrations/0015_push.sql,
// 0019_push_unread_counts.sql): the notifications the push rules made. The
// push notifier (syncapi/push) records them in the roomserver's
// transaction and /notifications lists them; their unread counts are in
// push_unread.go.
//
// A notification row is written once. It is read when its event is at or
// before its (user, room, thread)'s read position, which receipts and the
// user's own events move, so that neither rewrites earlier notifications.

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Thread IDs of notifications: MainThread for the main timeline, else the
// thread root's event ID (receipts module, "Threaded read receipts").
const MainThread = "main"

// Notification is a row of push_notifications.
type Notification struct {
	UserID    string
	EventPos  int64 // the event's stream position
	RoomID    string
	EventID   string
	ThreadID  string // MainThread or the root's event ID
	Actions   []byte // JSON array
	Highlight bool
	TS        int64
	Read      bool // its event is at or before the read position
}

// PushNotify is one user's notification of an event, with the tweaks sent
// to their push gateways.
type PushNotify struct {
	UserID    string
	Actions   []byte // JSON array
	Tweaks    []byte // JSON object
	Highlight bool
}

// PushEvent is what the notifier records for one room event, in one
// transaction.
type PushEvent struct {
	RoomID   string
	EventID  string
	EventPos int64
	ThreadID string
	TS       int64
	Notify   []PushNotify
	// LocalSender is the sender when a local user: sending counts as
	// reading their earlier notifications of the thread.
	LocalSender string
	// Withdraws is, for a redaction that redacted an event of the room's
	// timeline, that event's stream position: its notifications go.
	Withdraws int64
}

// PushRecorded is what RecordPushes did with one event.
type PushRecorded struct {
	// Pushers are the pushers with new pushes queued.
	Pushers []int64
}

// RecordPushes stores new room events' notifications, counts them unread,
// marks each local sender's earlier notifications of the thread read
// (sending counts as reading), and queues the pushes for the notified
// users' pushers (and a count update for a sender's whose count fell).
// Events are in stream order. The roomserver's push observer calls it in
// the transaction that stores the events, so no receipt can be at or
// after them yet: the notifications are unread. It reports, per event, the
// pushers with pushes queued.
func (tx *Tx) RecordPushes(ctx context.Context, pes []PushEvent) ([]PushRecorded, error) {
	out := make([]PushRecorded, len(pes))
	// Receipts write under the same locks, so a receipt's read either sees
	// these rows or comes after them. (A receipt takes one room's lock, so
	// taking several here, in any order, cannot deadlock with it.)
	rooms := make([]string, 0, len(pes))
	for _, pe := range pes {
		rooms = append(rooms, pe.RoomID)
	}
	slices.Sort(rooms)
	for _, r := range slices.Compact(rooms) {
		if err := tx.dialect.lockRoom(ctx, tx.tx, "push "+r); err != nil {
			return nil, fmt.Errorf("record notifications: %w", err)
		}
	}
	// The pushers of everyone notified or reading, once for the batch:
	// the same members are notified of event after event.
	var users []string
	seen := map[string]bool{}
	for _, pe := range pes {
		for _, n := range pe.Notify {
			if !seen[n.UserID] {
				seen[n.UserID] = true
				users = append(users, n.UserID)
			}
		}
		if u := pe.LocalSender; u != "" && !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	pushers, err := tx.pushersOf(ctx, users)
	if err != nil {
		return nil, err
	}
	counts := unreadChanges{}
	for i, pe := range pes {
		if len(pe.Notify) > 0 {
			if err := tx.insertNotifications(ctx, pe); err != nil {
				return nil, err
			}
			ids, err := tx.queuePushes(ctx, pe.RoomID, pe.EventID, pe.TS, pe.Notify, pushers)
			if err != nil {
				return nil, err
			}
			out[i].Pushers = ids
		}
		counts.add(i, pe)
	}
	if err := tx.applyUnreadChanges(ctx, counts, pes, pushers, out); err != nil {
		return nil, fmt.Errorf("record notifications: %w", err)
	}
	// After the counts, so that a redaction of an event of the same batch
	// finds its notifications counted, and read if a sender read them.
	for _, pe := range pes {
		if pe.Withdraws != 0 {
			if err := tx.withdrawNotifications(ctx, pe); err != nil {
				return nil, fmt.Errorf("record notifications: %w", err)
			}
		}
	}
	return out, nil
}

// withdrawNotifications deletes the notifications of the event a
// redaction redacted, as Synapse does (a message taken back no longer
// counts or lists), and takes the unread ones off their counts, whose
// change position becomes the redaction's so that incremental /sync
// reports them. Whoever was notified was a member of the room then and
// so has a membership in it now: their rows are found by primary key.
func (tx *Tx) withdrawNotifications(ctx context.Context, redaction PushEvent) error {
	rows, err := tx.q.QueryContext(ctx, `
		DELETE FROM push_notifications WHERE event_pos = $1 AND room_id = $2 AND user_id IN (
			SELECT m.user_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
			WHERE r.room_id = $2)
		RETURNING user_id, thread_id, highlight`, redaction.Withdraws, redaction.RoomID)
	if err != nil {
		return fmt.Errorf("withdraw notifications: %w", err)
	}
	// The users whose notification went, by thread and highlight: a
	// statement per group, not per user (a big room's redaction withdraws
	// thousands).
	type group struct {
		thread    string
		highlight bool
	}
	users := map[group][]string{}
	for rows.Next() {
		var user string
		var g group
		if err := rows.Scan(&user, &g.thread, &g.highlight); err != nil {
			rows.Close()
			return fmt.Errorf("withdraw notifications: %w", err)
		}
		users[g] = append(users[g], user)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("withdraw notifications: %w", err)
	}
	for g, us := range users {
		highlights := 0
		if g.highlight {
			highlights = 1
		}
		for chunk := range chunks(us, inChunk) {
			args := []any{highlights, redaction.EventPos, redaction.RoomID, g.thread, redaction.Withdraws}
			for _, u := range chunk {
				args = append(args, u)
			}
			if _, err := tx.q.ExecContext(ctx, `
				UPDATE push_unread SET notifications = notifications - 1, highlights = highlights - $1, stream_pos = $2
				WHERE room_id = $3 AND thread_id = $4 AND read_pos < $5 AND notifications > 0
				AND user_id IN (`+inList(6, len(chunk))+`)`, args...); err != nil {
				return fmt.Errorf("withdraw notifications: %w", err)
			}
		}
	}
	return nil
}

// rowsPerInsert is the rows of one multi-row INSERT, per database. SQLite
// binds "$n" parameters by name, looking each up in a list, so a
// statement's binding costs the square of its parameters: measured, 10
// rows a statement was the fastest, and statements of 200 rows were five
// times slower than one row at a time. PostgreSQL pays a round trip per
// statement instead, and wants them big.
func rowsPerInsert(d Dialect) int {
	if d == PostgreSQL {
		return 500
	}
	return 10
}

// insertNotifications inserts the event's notifications: the event's
// columns bound once, each member's three in a VALUES list (fewer
// parameters to bind: a 10,000-member room's rows went in 17% faster on
// SQLite). Untyped parameters would be text to PostgreSQL, hence the
// casts.
func (tx *Tx) insertNotifications(ctx context.Context, pe PushEvent) error {
	for part := range chunks(pe.Notify, rowsPerInsert(tx.dialect)) {
		var q strings.Builder
		q.WriteString(`INSERT INTO push_notifications
			(user_id, event_pos, room_id, event_id, thread_id, actions, highlight, ts)
			SELECT column1, CAST($1 AS BIGINT), $2, $3, $4, column2, CAST(column3 AS BOOLEAN), CAST($5 AS BIGINT)
			FROM (VALUES `)
		args := make([]any, 0, 5+len(part)*3)
		args = append(args, pe.EventPos, pe.RoomID, pe.EventID, pe.ThreadID, pe.TS)
		for i, n := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			p := len(args) + 1
			fmt.Fprintf(&q, "($%d, $%d, $%d)", p, p+1, p+2)
			args = append(args, n.UserID, string(n.Actions), n.Highlight)
		}
		q.WriteString(`) AS v`)
		if _, err := tx.q.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert notifications: %w", err)
		}
	}
	return nil
}

// Notifications returns userID's notifications of events before stream
// position before (0: from the newest), newest first, at most limit, only
// the highlighted ones when onlyHighlight.
func (db *DB) Notifications(ctx context.Context, userID string, before int64, limit int, onlyHighlight bool) ([]Notification, error) {
	args := []any{userID}
	if before > 0 {
		args = append(args, before)
	}
	rows, err := db.read.QueryContext(ctx, notificationsQuery(before > 0, onlyHighlight, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("notifications of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n := Notification{UserID: userID}
		var actions string
		if err := rows.Scan(&n.EventPos, &n.RoomID, &n.EventID, &n.ThreadID, &actions, &n.Highlight, &n.TS, &n.Read); err != nil {
			return nil, fmt.Errorf("notifications of %s: %w", userID, err)
		}
		n.Actions = []byte(actions)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notifications of %s: %w", userID, err)
	}
	return out, nil
}

// notificationsQuery is Notifications's statement ($1 the user, $2 the
// position to page before when before is set). The highlighted ones are
// read from push_notifications_highlight (migrations/0024): walking the
// user's notifications to find them read all of them when there were
// fewer than a page.
func notificationsQuery(before, onlyHighlight bool, limit int) string {
	q := `SELECT n.event_pos, n.room_id, n.event_id, n.thread_id, n.actions, n.highlight, n.ts,
			n.event_pos <= COALESCE(u.read_pos, 0)
		FROM push_notifications n LEFT JOIN push_unread u
			ON u.user_id = n.user_id AND u.room_id = n.room_id AND u.thread_id = n.thread_id
		WHERE n.user_id = $1`
	if before {
		q += ` AND n.event_pos < $2`
	}
	if onlyHighlight {
		q += ` AND n.highlight`
	}
	return q + ` ORDER BY n.event_pos DESC` + limitClause(limit)
}

// PruneNotifications deletes, oldest first, up to limit notifications
// made before beforeTS (milliseconds) that are read, and reports how many
// it deleted. Unread ones stay, however old: a receipt recounts from them.
func (db *DB) PruneNotifications(ctx context.Context, beforeTS int64, limit int) (int, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.q.ExecContext(ctx, `
			DELETE FROM push_notifications WHERE (user_id, event_pos) IN (
				SELECT n.user_id, n.event_pos FROM push_notifications n JOIN push_unread u
					ON u.user_id = n.user_id AND u.room_id = n.room_id AND u.thread_id = n.thread_id
				WHERE n.ts < $1 AND n.event_pos <= u.read_pos LIMIT $2)`, beforeTS, limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune notifications: %w", err)
	}
	return int(n), nil
}

// PushRulesOf returns the m.push_rules and m.ignored_user_list account
// data of users (global), by user and type; users without are absent.
func (db *DB) PushRulesOf(ctx context.Context, users []string) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	for part := range chunks(users, inChunk) {
		args := make([]any, len(part))
		for i, u := range part {
			args[i] = u
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT user_id, data_type, content FROM account_data
			WHERE room_id = '' AND data_type IN ('m.push_rules', 'm.ignored_user_list')
				AND user_id IN (`+inList(1, len(part))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("push rules: %w", err)
		}
		for rows.Next() {
			var user, typ, content string
			if err := rows.Scan(&user, &typ, &content); err != nil {
				rows.Close()
				return nil, fmt.Errorf("push rules: %w", err)
			}
			if out[user] == nil {
				out[user] = map[string][]byte{}
			}
			out[user][typ] = []byte(content)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("push rules: %w", err)
		}
	}
	return out, nil
}
