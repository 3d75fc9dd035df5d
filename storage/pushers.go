package storage

// Queries on pushers and push_queue (migrations/0015_push.sql): the
// pushers clients set (POST /pushers/set) and the durable queue of pushes
// the notifier hands to their push gateways, with each pusher's backoff.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Pusher is a row of pushers.
type Pusher struct {
	ID                int64
	UserID            string
	AppID             string
	Pushkey           string
	Kind              string
	AppDisplayName    string
	DeviceDisplayName string
	ProfileTag        string
	Lang              string
	Data              []byte // the JSON object the client gave
	URL               string // data.url
	DeviceID          string
	PushkeyTS         int64 // milliseconds
	Failures          int
	RetryAtTS         int64
}

const pusherCols = `pusher_id, user_id, app_id, pushkey, kind, app_display_name, device_display_name,
	profile_tag, lang, data, url, device_id, pushkey_ts, failures, retry_at_ts`

func scanPusher(row interface{ Scan(...any) error }) (*Pusher, error) {
	var (
		p    Pusher
		data string
	)
	if err := row.Scan(&p.ID, &p.UserID, &p.AppID, &p.Pushkey, &p.Kind, &p.AppDisplayName, &p.DeviceDisplayName,
		&p.ProfileTag, &p.Lang, &data, &p.URL, &p.DeviceID, &p.PushkeyTS, &p.Failures, &p.RetryAtTS); err != nil {
		return nil, err
	}
	p.Data = []byte(data)
	return &p, nil
}

// SetPusher creates or updates the pusher (UserID, AppID, Pushkey). Unless
// keepOthers (the API's append), pushers of other users with the same
// AppID and Pushkey are removed: a pushkey is a device, which has one
// user. A changed pusher starts without backoff.
func (db *DB) SetPusher(ctx context.Context, p Pusher, keepOthers bool) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if !keepOthers {
			if _, err := tx.q.ExecContext(ctx, `DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3`,
				p.AppID, p.Pushkey, p.UserID); err != nil {
				return fmt.Errorf("set pusher: %w", err)
			}
		}
		_, err := tx.q.ExecContext(ctx, `
			INSERT INTO pushers (user_id, app_id, pushkey, kind, app_display_name, device_display_name,
				profile_tag, lang, data, url, device_id, pushkey_ts, failures, retry_at_ts)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0)
			ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET
				kind = excluded.kind, app_display_name = excluded.app_display_name,
				device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag,
				lang = excluded.lang, data = excluded.data, url = excluded.url, device_id = excluded.device_id,
				pushkey_ts = excluded.pushkey_ts, failures = 0, retry_at_ts = 0`,
			p.UserID, p.AppID, p.Pushkey, p.Kind, p.AppDisplayName, p.DeviceDisplayName,
			p.ProfileTag, p.Lang, string(p.Data), p.URL, p.DeviceID, p.PushkeyTS)
		if err != nil {
			return fmt.Errorf("set pusher: %w", err)
		}
		return nil
	})
}

// DeletePusher removes userID's pusher (appID, pushkey), and what is
// queued for it. It reports whether there was one.
func (db *DB) DeletePusher(ctx context.Context, userID, appID, pushkey string) (bool, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.q.ExecContext(ctx, `DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3`,
			userID, appID, pushkey)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete pusher: %w", err)
	}
	return n > 0, nil
}

// DeletePusherByID removes a pusher and its queue (a gateway rejected its
// pushkey).
func (db *DB) DeletePusherByID(ctx context.Context, id int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM pushers WHERE pusher_id = $1`, id); err != nil {
			return fmt.Errorf("delete pusher %d: %w", id, err)
		}
		return nil
	})
}

// Pushers returns userID's pushers, oldest first.
func (db *DB) Pushers(ctx context.Context, userID string) ([]*Pusher, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+pusherCols+` FROM pushers WHERE user_id = $1 ORDER BY pusher_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("pushers of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []*Pusher
	for rows.Next() {
		p, err := scanPusher(rows)
		if err != nil {
			return nil, fmt.Errorf("pushers of %s: %w", userID, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pushers of %s: %w", userID, err)
	}
	return out, nil
}

// PusherByID returns the pusher id, or an error wrapping ErrNotFound.
func (db *DB) PusherByID(ctx context.Context, id int64) (*Pusher, error) {
	p, err := scanPusher(db.read.QueryRowContext(ctx, `SELECT `+pusherCols+` FROM pushers WHERE pusher_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pusher %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pusher %d: %w", id, err)
	}
	return p, nil
}

// SetPusherBackoff records a pusher's failures in a row and when to try
// again (failures 0 clears it).
func (db *DB) SetPusherBackoff(ctx context.Context, id int64, failures int, retryAtTS int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, `UPDATE pushers SET failures = $1, retry_at_ts = $2 WHERE pusher_id = $3`,
			failures, retryAtTS, id); err != nil {
			return fmt.Errorf("pusher %d backoff: %w", id, err)
		}
		return nil
	})
}

// QueuedPush is one push waiting to be sent.
type QueuedPush struct {
	ID        int64
	PusherID  int64
	RoomID    string
	EventID   string // "" for a count update alone
	Tweaks    []byte // JSON object
	CreatedTS int64
}

// pushersOf returns the pushers of those of users that have any, by user,
// a chunk of users at a time (few users have pushers: finding them first
// is cheaper than trying an insert per user).
func (tx *Tx) pushersOf(ctx context.Context, users []string) (map[string][]int64, error) {
	out := map[string][]int64{}
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	for part := range chunks(args, inChunk) {
		rows, err := tx.q.QueryContext(ctx, `SELECT pusher_id, user_id FROM pushers WHERE user_id IN (`+
			inList(1, len(part))+`) ORDER BY pusher_id`, part...)
		if err != nil {
			return nil, fmt.Errorf("pushers of the notified: %w", err)
		}
		for rows.Next() {
			var (
				id   int64
				user string
			)
			if err := rows.Scan(&id, &user); err != nil {
				rows.Close()
				return nil, fmt.Errorf("pushers of the notified: %w", err)
			}
			out[user] = append(out[user], id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("pushers of the notified: %w", err)
		}
	}
	return out, nil
}

// queuePushes queues the event for the pushers (pushers, by user, from
// pushersOf) of the notified users and returns the pushers concerned.
func (tx *Tx) queuePushes(ctx context.Context, roomID, eventID string, ts int64, notified []PushNotify, pushers map[string][]int64) ([]int64, error) {
	var ids []int64
	for _, n := range notified {
		for _, id := range pushers[n.UserID] {
			if err := tx.queuePush(ctx, id, roomID, eventID, n.Tweaks, ts); err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// queueCountPushes queues a count update for each of userID's pushers.
func (tx *Tx) queueCountPushes(ctx context.Context, userID string, ts int64) ([]int64, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT pusher_id FROM pushers WHERE user_id = $1`, userID)
	if err != nil {
		return nil, fmt.Errorf("pushers of %s: %w", userID, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pushers of %s: %w", userID, err)
		}
		ids = append(ids, id)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("pushers of %s: %w", userID, err)
	}
	return ids, tx.queueCountPushesTo(ctx, ids, ts)
}

// queueCountPushesTo queues a count update for each pusher of ids that has
// none waiting.
func (tx *Tx) queueCountPushesTo(ctx context.Context, ids []int64, ts int64) error {
	for _, id := range ids {
		// One count update waiting is enough: the count is read when it
		// is sent.
		var waiting int
		if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_queue WHERE pusher_id = $1 AND event_id = ''`,
			id).Scan(&waiting); err != nil {
			return fmt.Errorf("queue of pusher %d: %w", id, err)
		}
		if waiting == 0 {
			if err := tx.queuePush(ctx, id, "", "", []byte(`{}`), ts); err != nil {
				return err
			}
		}
	}
	return nil
}

func (tx *Tx) queuePush(ctx context.Context, pusher int64, roomID, eventID string, tweaks []byte, ts int64) error {
	if tweaks == nil {
		tweaks = []byte(`{}`)
	}
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO push_queue (pusher_id, room_id, event_id, tweaks, created_ts) VALUES ($1, $2, $3, $4, $5)`,
		pusher, roomID, eventID, string(tweaks), ts)
	if err != nil {
		return fmt.Errorf("queue a push for pusher %d: %w", pusher, err)
	}
	return nil
}

// QueuedPushes returns up to limit of the pusher's queued pushes, oldest
// first.
func (db *DB) QueuedPushes(ctx context.Context, pusherID int64, limit int) ([]QueuedPush, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT queue_id, room_id, event_id, tweaks, created_ts FROM push_queue
		WHERE pusher_id = $1 ORDER BY queue_id`+limitClause(limit), pusherID)
	if err != nil {
		return nil, fmt.Errorf("queue of pusher %d: %w", pusherID, err)
	}
	defer rows.Close()
	var out []QueuedPush
	for rows.Next() {
		q := QueuedPush{PusherID: pusherID}
		var tweaks string
		if err := rows.Scan(&q.ID, &q.RoomID, &q.EventID, &tweaks, &q.CreatedTS); err != nil {
			return nil, fmt.Errorf("queue of pusher %d: %w", pusherID, err)
		}
		q.Tweaks = []byte(tweaks)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue of pusher %d: %w", pusherID, err)
	}
	return out, nil
}

// DeleteQueuedPush removes a push that was sent or given up on.
func (db *DB) DeleteQueuedPush(ctx context.Context, queueID int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM push_queue WHERE queue_id = $1`, queueID); err != nil {
			return fmt.Errorf("dequeue push %d: %w", queueID, err)
		}
		return nil
	})
}

// PushersWithQueue returns the pushers that have pushes waiting.
func (db *DB) PushersWithQueue(ctx context.Context) ([]int64, error) {
	return queryInt64s(ctx, db.read, `SELECT DISTINCT pusher_id FROM push_queue ORDER BY pusher_id`)
}
