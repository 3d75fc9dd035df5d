package storage

// Unread counts (migrations/0019_push_unread_counts.sql): per user, room
// and thread, push_unread keeps the read position and the count of
// notifications after it. New notifications add to it in the batch that
// records them (RecordPushes), a user's own event or read receipt moves
// the position and recounts what is left, and /sync reads the counts.

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// unreadKey is a row of push_unread.
type unreadKey struct{ user, room, thread string }

// unreadChange is what a batch of events does to one push_unread row: add
// notifications, or, when the user sent an event in the thread, read up to
// their last one and count only the notifications after it.
type unreadChange struct {
	notifications, highlights int64
	pos                       int64 // the last event's stream position
	read                      bool  // the user sent an event: read_pos moves to readPos
	readPos                   int64
	readEvent                 int  // the index of the user's last event in the batch
	readBefore                bool // notifications of the batch were read by it
}

type unreadChanges map[unreadKey]*unreadChange

func (cs unreadChanges) get(k unreadKey) *unreadChange {
	c := cs[k]
	if c == nil {
		c = &unreadChange{}
		cs[k] = c
	}
	return c
}

// add applies the event pe, the batch's i-th, to the counts.
func (cs unreadChanges) add(i int, pe PushEvent) {
	for _, n := range pe.Notify {
		c := cs.get(unreadKey{n.UserID, pe.RoomID, pe.ThreadID})
		c.notifications++
		if n.Highlight {
			c.highlights++
		}
		c.pos = pe.EventPos
	}
	if pe.LocalSender != "" {
		c := cs.get(unreadKey{pe.LocalSender, pe.RoomID, pe.ThreadID})
		c.readBefore = c.readBefore || c.notifications > 0
		c.notifications, c.highlights = 0, 0
		c.read, c.readPos, c.readEvent = true, pe.EventPos, i
		c.pos = pe.EventPos
	}
}

// applyUnreadChanges writes the batch's counts: added to the rows of users
// who only received notifications, set for those who read, with a count
// update queued for their pushers when their count fell.
func (tx *Tx) applyUnreadChanges(ctx context.Context, cs unreadChanges, pes []PushEvent, pushers map[string][]int64, out []PushRecorded) error {
	var added []unreadKey
	for k, c := range cs {
		if !c.read {
			added = append(added, k)
			continue
		}
		fell, err := tx.readUnread(ctx, k, c, len(pushers[k.user]) > 0)
		if err != nil {
			return fmt.Errorf("read notifications of %s: %w", k.user, err)
		}
		if fell && len(pushers[k.user]) > 0 {
			if err := tx.queueCountPushesTo(ctx, pushers[k.user], pes[c.readEvent].TS); err != nil {
				return err
			}
			out[c.readEvent].Pushers = append(out[c.readEvent].Pushers, pushers[k.user]...)
		}
	}
	// In key order: two transactions upserting the same rows on
	// PostgreSQL lock them in the same order.
	slices.SortFunc(added, func(a, b unreadKey) int {
		return cmp.Or(cmp.Compare(a.user, b.user), cmp.Compare(a.room, b.room), cmp.Compare(a.thread, b.thread))
	})
	for part := range chunks(added, rowsPerInsert(tx.dialect)) {
		var q strings.Builder
		q.WriteString(`INSERT INTO push_unread
			(user_id, room_id, thread_id, notifications, highlights, read_pos, stream_pos) VALUES `)
		args := make([]any, 0, len(part)*6)
		for i, k := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			p := len(args) + 1
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, 0, $%d)", p, p+1, p+2, p+3, p+4, p+5)
			c := cs[k]
			args = append(args, k.user, k.room, k.thread, c.notifications, c.highlights, c.pos)
		}
		q.WriteString(` ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET
			notifications = push_unread.notifications + excluded.notifications,
			highlights = push_unread.highlights + excluded.highlights, stream_pos = excluded.stream_pos`)
		if _, err := tx.q.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("count notifications: %w", err)
		}
	}
	return nil
}

// readUnread writes the row of a user who read in the batch (c.read) and
// reports whether their count fell, which is looked up only when asked
// (the user has pushers to tell).
func (tx *Tx) readUnread(ctx context.Context, k unreadKey, c *unreadChange, askFell bool) (bool, error) {
	if c.notifications == 0 && !c.readBefore {
		// Nothing of the batch is unread: clear what was, if anything
		// (a read_pos left behind is as good when nothing is unread).
		res, err := tx.q.ExecContext(ctx, `
			UPDATE push_unread SET notifications = 0, highlights = 0, read_pos = $1, stream_pos = $2
			WHERE user_id = $3 AND room_id = $4 AND thread_id = $5 AND notifications > 0`,
			c.readPos, c.pos, k.user, k.room, k.thread)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	}
	fell := c.readBefore
	if !fell && askFell {
		var before int64
		err := tx.q.QueryRowContext(ctx, `
			SELECT notifications FROM push_unread WHERE user_id = $1 AND room_id = $2 AND thread_id = $3`,
			k.user, k.room, k.thread).Scan(&before)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		fell = before > 0
	}
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO push_unread (user_id, room_id, thread_id, notifications, highlights, read_pos, stream_pos)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET notifications = excluded.notifications,
			highlights = excluded.highlights, read_pos = excluded.read_pos, stream_pos = excluded.stream_pos`,
		k.user, k.room, k.thread, c.notifications, c.highlights, c.readPos, c.pos)
	return fell, err
}

// MarkNotificationsRead moves userID's read position in roomID up to the
// event at eventPos, in threadID only when it is not "" (a threaded
// receipt), else in every thread, recounts what is left unread, and queues
// a count update for the user's pushers when a count fell. pos is the
// receipt's stream position. Receipts call it in their transaction, after
// taking their stream position. It reports whether a count changed.
func (tx *Tx) MarkNotificationsRead(ctx context.Context, userID, roomID, threadID string, eventPos, pos, nowTS int64) (bool, error) {
	if err := tx.dialect.lockRoom(ctx, tx.tx, "push "+roomID); err != nil {
		return false, err
	}
	// Each (room, thread) row the read moves, with what is left after the
	// event: the user's notifications after it, found by the primary key
	// (few, for a receipt of a recent event) and counted per thread in one
	// walk, in one statement. (Joined to each row instead, the walk was
	// repeated for every thread of the room.)
	thread := ""
	args := []any{userID, roomID, eventPos}
	if threadID != "" {
		thread = ` AND u.thread_id = $4`
		args = append(args, threadID)
	}
	rows, err := tx.q.QueryContext(ctx, `
		SELECT u.thread_id, u.notifications, COALESCE(n.notifications, 0), COALESCE(n.highlights, 0)
		FROM push_unread u LEFT JOIN (
			SELECT thread_id, COUNT(*) AS notifications, SUM(CASE WHEN highlight THEN 1 ELSE 0 END) AS highlights
			FROM push_notifications WHERE user_id = $1 AND event_pos > $3 AND room_id = $2
			GROUP BY thread_id) n ON n.thread_id = u.thread_id
		WHERE u.user_id = $1 AND u.room_id = $2 AND u.read_pos < $3`+thread, args...)
	if err != nil {
		return false, fmt.Errorf("unread notifications of %s in %s: %w", userID, roomID, err)
	}
	type left struct {
		thread            string
		before, now, high int64
	}
	var moved []left
	for rows.Next() {
		var l left
		if err := rows.Scan(&l.thread, &l.before, &l.now, &l.high); err != nil {
			rows.Close()
			return false, fmt.Errorf("unread notifications of %s in %s: %w", userID, roomID, err)
		}
		moved = append(moved, l)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return false, fmt.Errorf("unread notifications of %s in %s: %w", userID, roomID, err)
	}
	changed := false
	for _, l := range moved {
		// The row's change position moves only with its count, which is
		// what incremental /sync looks for.
		changed = changed || l.now != l.before
		if _, err := tx.q.ExecContext(ctx, `
			UPDATE push_unread SET read_pos = $1, notifications = $2, highlights = $3,
				stream_pos = CASE WHEN notifications = $2 THEN stream_pos ELSE $4 END
			WHERE user_id = $5 AND room_id = $6 AND thread_id = $7`,
			eventPos, l.now, l.high, pos, userID, roomID, l.thread); err != nil {
			return false, fmt.Errorf("read notifications of %s in %s: %w", userID, roomID, err)
		}
	}
	if !changed {
		return false, nil
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

// UnreadState returns, in one statement, userID's unread notifications of
// events at stream positions up to upto, per room and thread, where there
// are any, and the rooms where their counts changed (a new notification,
// or a read) after stream position since (none with math.MaxInt64): what a
// /sync response carries.
// Only the last change of each room and thread is kept, so a room whose
// counts changed before and after upto is reported now rather than lost.
func (db *DB) UnreadState(ctx context.Context, userID string, since, upto int64) (counts []UnreadCount, changed []string, err error) {
	// The counts are as of now: each comes with the unread notifications
	// of events after upto, which the caller's response does not have
	// yet, to take back (one statement, so that both are of one moment).
	rows, err := db.read.QueryContext(ctx, `
		SELECT u.room_id, u.thread_id, u.notifications, u.highlights, u.stream_pos > $3, l.highlight
		FROM push_unread u LEFT JOIN push_notifications l
			ON u.notifications > 0 AND l.user_id = u.user_id AND l.event_pos > $2 AND l.event_pos > u.read_pos
			AND l.room_id = u.room_id AND l.thread_id = u.thread_id
		WHERE u.user_id = $1 AND (u.notifications > 0 OR u.stream_pos > $3)`, userID, upto, since)
	if err != nil {
		return nil, nil, fmt.Errorf("unread counts of %s: %w", userID, err)
	}
	defer rows.Close()
	index := map[[2]string]int{}
	seen := map[string]bool{}
	for rows.Next() {
		var c UnreadCount
		var moved bool
		var late sql.NullBool
		if err := rows.Scan(&c.RoomID, &c.ThreadID, &c.Notifications, &c.Highlights, &moved, &late); err != nil {
			return nil, nil, fmt.Errorf("unread counts of %s: %w", userID, err)
		}
		if moved && !seen[c.RoomID] {
			seen[c.RoomID] = true
			changed = append(changed, c.RoomID)
		}
		if c.Notifications <= 0 {
			continue
		}
		k := [2]string{c.RoomID, c.ThreadID}
		i, known := index[k]
		if !known {
			i = len(counts)
			index[k] = i
			counts = append(counts, c)
		}
		if late.Valid {
			counts[i].Notifications--
			if late.Bool {
				counts[i].Highlights--
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("unread counts of %s: %w", userID, err)
	}
	return slices.DeleteFunc(counts, func(c UnreadCount) bool { return c.Notifications <= 0 }), changed, nil
}

// UnreadTotal returns how many unread notifications userID has in all
// rooms (the "unread" count pushed to their devices).
func (db *DB) UnreadTotal(ctx context.Context, userID string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `
		SELECT COALESCE(SUM(notifications), 0) FROM push_unread WHERE user_id = $1`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unread total of %s: %w", userID, err)
	}
	return n, nil
}
