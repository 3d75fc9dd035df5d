package storage

// Queries on push_notifications (migrations/0015_push.sql): the
// notifications the push rules made and their read state. The push
// notifier (syncapi/push) writes them in the roomserver's transaction,
// receipts mark them read, /sync reads the unread counts, /notifications
// lists them.

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
	Read      bool
	// StreamPos is the stream position of the row's last change: the
	// event's own when it was made, the receipt's when a receipt read it.
	StreamPos int64
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
}

// PushRecorded is what RecordPushes did with one event.
type PushRecorded struct {
	// Pushers are the pushers with new pushes queued.
	Pushers []int64
}

// RecordPushes stores new room events' notifications, marks each local
// sender's earlier notifications of the thread read (sending counts as
// reading), and queues the pushes for the notified users' pushers (and a
// count update for a sender's). Events are in stream order. The
// roomserver's push observer calls it in the transaction that stores the
// events, so no receipt can be at or after them yet: the notifications are
// unread. It reports, per event, the pushers with pushes queued.
//
// The rows take the event's stream position, which incremental /sync
// follows to find rooms whose counts changed.
func (tx *Tx) RecordPushes(ctx context.Context, pes []PushEvent) ([]PushRecorded, error) {
	out := make([]PushRecorded, len(pes))
	// Receipts write under the same locks, so a receipt's marking read
	// either sees these rows or comes after them. (A receipt takes one
	// room's lock, so taking several here, in any order, cannot deadlock
	// with it.)
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
	// The pushers of everyone notified, once for the batch: the same
	// members are notified of event after event.
	var notified []string
	seen := map[string]bool{}
	for _, pe := range pes {
		for _, n := range pe.Notify {
			if !seen[n.UserID] {
				seen[n.UserID] = true
				notified = append(notified, n.UserID)
			}
		}
	}
	pushers, err := tx.pushersOf(ctx, notified)
	if err != nil {
		return nil, err
	}
	for i, pe := range pes {
		if err := tx.recordPush(ctx, pe, pushers, &out[i]); err != nil {
			return nil, fmt.Errorf("record notifications: %w", err)
		}
	}
	return out, nil
}

func (tx *Tx) recordPush(ctx context.Context, pe PushEvent, pushers map[string][]int64, out *PushRecorded) error {
	if len(pe.Notify) > 0 {
		if err := tx.insertNotifications(ctx, pe); err != nil {
			return err
		}
		ids, err := tx.queuePushes(ctx, pe.RoomID, pe.EventID, pe.TS, pe.Notify, pushers)
		if err != nil {
			return err
		}
		out.Pushers = ids
	}
	if pe.LocalSender != "" {
		res, err := tx.q.ExecContext(ctx, `
			UPDATE push_notifications SET is_read = TRUE, stream_pos = $1
			WHERE user_id = $2 AND room_id = $3 AND thread_id = $4 AND NOT is_read AND event_pos < $5`,
			pe.EventPos, pe.LocalSender, pe.RoomID, pe.ThreadID, pe.EventPos)
		if err != nil {
			return fmt.Errorf("mark %s's notifications read: %w", pe.LocalSender, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			ids, err := tx.queueCountPushes(ctx, pe.LocalSender, pe.TS)
			if err != nil {
				return err
			}
			out.Pushers = append(out.Pushers, ids...)
		}
	}
	return nil
}

// notificationRowsPerInsert is the rows of one multi-row INSERT (10
// parameters each), per database. SQLite binds "$n" parameters by name,
// looking each up in a list, so a statement's binding costs the square of
// its parameters: measured, 10 rows a statement was the fastest, and
// statements of 200 rows were five times slower than one row at a time.
// PostgreSQL pays a round trip per statement instead, and wants them big.
func notificationRowsPerInsert(d Dialect) int {
	if d == PostgreSQL {
		return 500
	}
	return 10
}

// insertNotifications inserts the event's notifications, unread.
func (tx *Tx) insertNotifications(ctx context.Context, pe PushEvent) error {
	for part := range chunks(pe.Notify, notificationRowsPerInsert(tx.dialect)) {
		var q strings.Builder
		q.WriteString(`INSERT INTO push_notifications
			(user_id, event_pos, room_id, event_id, thread_id, actions, highlight, ts, is_read, stream_pos) VALUES `)
		args := make([]any, 0, len(part)*9)
		for i, n := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			// is_read is a literal: fewer parameters to bind (see
			// notificationRowsPerInsert).
			p := len(args) + 1
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, FALSE, $%d)", p, p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+1)
			args = append(args, n.UserID, pe.EventPos, pe.RoomID, pe.EventID, pe.ThreadID, string(n.Actions), n.Highlight, pe.TS)
		}
		// Full chunks share one text, which the statement cache keeps.
		if _, err := tx.q.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert notifications: %w", err)
		}
	}
	return nil
}

// MarkNotificationsRead marks userID's notifications in roomID up to the
// event at eventPos read, those of threadID only when it is not "" (a
// threaded receipt), at stream position pos (the receipt's), and queues a
// count update for the user's pushers when any changed. Receipts call it
// in their transaction, after taking their stream position. It reports
// whether any notification changed.
func (tx *Tx) MarkNotificationsRead(ctx context.Context, userID, roomID, threadID string, eventPos, pos, nowTS int64) (bool, error) {
	if err := tx.dialect.lockRoom(ctx, tx.tx, "push "+roomID); err != nil {
		return false, err
	}
	q := `UPDATE push_notifications SET is_read = TRUE, stream_pos = $1
		WHERE user_id = $2 AND room_id = $3 AND NOT is_read AND event_pos <= $4`
	args := []any{pos, userID, roomID, eventPos}
	if threadID != "" {
		q += ` AND thread_id = $5`
		args = append(args, threadID)
	}
	res, err := tx.q.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("mark notifications of %s in %s read: %w", userID, roomID, err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.queueCountPushes(ctx, userID, nowTS); err != nil {
		return false, err
	}
	return true, nil
}

// UnreadCount is the unread notifications of one thread of one room.
type UnreadCount struct {
	RoomID        string
	ThreadID      string
	Notifications int
	Highlights    int
}

// UnreadCounts returns userID's unread notifications of events at stream
// positions up to upto, per room and thread.
func (db *DB) UnreadCounts(ctx context.Context, userID string, upto int64) ([]UnreadCount, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT room_id, thread_id, COUNT(*), COALESCE(SUM(CASE WHEN highlight THEN 1 ELSE 0 END), 0)
		FROM push_notifications
		WHERE user_id = $1 AND NOT is_read AND event_pos <= $2
		GROUP BY room_id, thread_id`, userID, upto)
	if err != nil {
		return nil, fmt.Errorf("unread counts of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []UnreadCount
	for rows.Next() {
		var c UnreadCount
		if err := rows.Scan(&c.RoomID, &c.ThreadID, &c.Notifications, &c.Highlights); err != nil {
			return nil, fmt.Errorf("unread counts of %s: %w", userID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unread counts of %s: %w", userID, err)
	}
	return out, nil
}

// UnreadTotal returns how many unread notifications userID has in all
// rooms (the "unread" count pushed to their devices).
func (db *DB) UnreadTotal(ctx context.Context, userID string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM push_notifications WHERE user_id = $1 AND NOT is_read`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unread total of %s: %w", userID, err)
	}
	return n, nil
}

// NotificationRoomsChanged returns the rooms where userID's notifications
// changed (new, or read) at stream positions in (since, upto]: the new
// ones by their event's position, the read ones by their read's
// (migrations/0018).
func (db *DB) NotificationRoomsChanged(ctx context.Context, userID string, since, upto int64) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT room_id FROM push_notifications
		WHERE user_id = $1 AND event_pos > $2 AND event_pos <= $3
		UNION
		SELECT room_id FROM push_notifications
		WHERE user_id = $1 AND is_read AND stream_pos > $2 AND stream_pos <= $3`, userID, since, upto)
	if err != nil {
		return nil, fmt.Errorf("notification changes of %s: %w", userID, err)
	}
	ids, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("notification changes of %s: %w", userID, err)
	}
	return ids, nil
}

// Notifications returns userID's notifications of events before stream
// position before (0: from the newest), newest first, at most limit, only
// the highlighted ones when onlyHighlight.
func (db *DB) Notifications(ctx context.Context, userID string, before int64, limit int, onlyHighlight bool) ([]Notification, error) {
	q := `SELECT event_pos, room_id, event_id, thread_id, actions, highlight, ts, is_read, stream_pos
		FROM push_notifications WHERE user_id = $1`
	args := []any{userID}
	if before > 0 {
		q += ` AND event_pos < $2`
		args = append(args, before)
	}
	if onlyHighlight {
		q += ` AND highlight`
	}
	q += ` ORDER BY event_pos DESC` + limitClause(limit)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("notifications of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n := Notification{UserID: userID}
		var actions string
		if err := rows.Scan(&n.EventPos, &n.RoomID, &n.EventID, &n.ThreadID, &actions, &n.Highlight, &n.TS, &n.Read, &n.StreamPos); err != nil {
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
