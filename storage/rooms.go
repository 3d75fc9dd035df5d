package storage

// Queries on rooms, forward extremities, the global stream position and the
// roomserver's publication marker (migrations/0003_rooms.sql). Written for
// the roomserver, which is the only writer of room state; the stream
// position is shared with every writer of something /sync returns.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrRoomExists is returned (wrapped) by InsertRoom when the room ID is taken.
var ErrRoomExists = errors.New("room already exists")

// Room is a row of the rooms table.
type Room struct {
	NID     int64
	RoomID  string
	Version string // the room version ID, e.g. "11"
	// StateNID is the snapshot of the room's current state (0: no state yet).
	StateNID int64
}

// LockRoom makes this transaction the only writer of the room until it
// ends, across processes (PostgreSQL advisory lock; on SQLite the write
// transaction already excludes every other writer). Lock rooms in a fixed
// order (e.g. sorted by ID) when a transaction writes several.
func (tx *Tx) LockRoom(ctx context.Context, roomID string) error {
	return tx.dialect.lockRoom(ctx, tx.tx, roomID)
}

// InsertRoom adds a room and returns its NID, or an error wrapping
// ErrRoomExists.
func (tx *Tx) InsertRoom(ctx context.Context, roomID, version string) (int64, error) {
	var nid int64
	err := tx.q.QueryRowContext(ctx, `
		INSERT INTO rooms (room_id, room_version, state_nid, created_ts)
		VALUES ($1, $2, 0, $3)
		ON CONFLICT (room_id) DO NOTHING
		RETURNING room_nid`, roomID, version, time.Now().UnixMilli()).Scan(&nid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("insert room %s: %w", roomID, ErrRoomExists)
	}
	if err != nil {
		return 0, fmt.Errorf("insert room %s: %w", roomID, err)
	}
	return nid, nil
}

// Room returns the room roomID, or an error wrapping ErrNotFound.
func (db *DB) Room(ctx context.Context, roomID string) (*Room, error) {
	return getRoom(ctx, db.read, roomID)
}

// Room is DB.Room within tx.
func (tx *Tx) Room(ctx context.Context, roomID string) (*Room, error) {
	return getRoom(ctx, tx.q, roomID)
}

func getRoom(ctx context.Context, q queryer, roomID string) (*Room, error) {
	r := Room{RoomID: roomID}
	err := q.QueryRowContext(ctx, `
		SELECT room_nid, room_version, state_nid FROM rooms WHERE room_id = $1`, roomID).
		Scan(&r.NID, &r.Version, &r.StateNID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("room %s: %w", roomID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get room %s: %w", roomID, err)
	}
	return &r, nil
}

// SetRoomState records stateNID as the snapshot of the room's current state.
// The caller keeps room_state (SetCurrentState) in step.
func (tx *Tx) SetRoomState(ctx context.Context, roomNID, stateNID int64) error {
	if _, err := tx.q.ExecContext(ctx, `UPDATE rooms SET state_nid = $1 WHERE room_nid = $2`, stateNID, roomNID); err != nil {
		return fmt.Errorf("set room state: %w", err)
	}
	return nil
}

// Extremity is a forward extremity of a room: an event no other event of the
// room cites as a prev_event yet.
type Extremity struct {
	EventNID int64
	EventID  string
	Depth    int64
}

// ForwardExtremities returns the room's forward extremities, oldest first.
func (tx *Tx) ForwardExtremities(ctx context.Context, roomNID int64) ([]Extremity, error) {
	return forwardExtremities(ctx, tx.q, roomNID)
}

// ForwardExtremities is Tx.ForwardExtremities outside a transaction.
func (db *DB) ForwardExtremities(ctx context.Context, roomNID int64) ([]Extremity, error) {
	return forwardExtremities(ctx, db.read, roomNID)
}

func forwardExtremities(ctx context.Context, q queryer, roomNID int64) ([]Extremity, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT e.event_nid, e.event_id, e.depth
		FROM room_forward_extremities f JOIN events e ON e.event_nid = f.event_nid
		WHERE f.room_nid = $1
		ORDER BY e.event_nid`, roomNID)
	if err != nil {
		return nil, fmt.Errorf("forward extremities: %w", err)
	}
	defer rows.Close()
	var out []Extremity
	for rows.Next() {
		var x Extremity
		if err := rows.Scan(&x.EventNID, &x.EventID, &x.Depth); err != nil {
			return nil, fmt.Errorf("forward extremities: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("forward extremities: %w", err)
	}
	return out, nil
}

// UpdateForwardExtremities removes the events remove from the room's
// forward extremities (those a new event cites as prev_events) and adds the
// events add.
func (tx *Tx) UpdateForwardExtremities(ctx context.Context, roomNID int64, remove []int64, add ...int64) error {
	for _, nid := range remove {
		if _, err := tx.q.ExecContext(ctx, `
			DELETE FROM room_forward_extremities WHERE room_nid = $1 AND event_nid = $2`, roomNID, nid); err != nil {
			return fmt.Errorf("remove forward extremity: %w", err)
		}
	}
	for _, nid := range add {
		if _, err := tx.q.ExecContext(ctx, `
			INSERT INTO room_forward_extremities (room_nid, event_nid) VALUES ($1, $2)
			ON CONFLICT (room_nid, event_nid) DO NOTHING`, roomNID, nid); err != nil {
			return fmt.Errorf("add forward extremity: %w", err)
		}
	}
	return nil
}

// NextStreamPos allocates the next position of the global stream. It is
// the one source of stream positions for everything /sync returns (room
// events, receipts, account data, ...): positions increase in commit order,
// because the counter row stays locked until the transaction ends (on
// SQLite the whole database is), so a reader that sees position p
// committed has every position below p committed or rolled back. Call it
// as late in the transaction as possible, since it makes other writers of
// positions wait for this transaction's commit.
//
// Only the transaction's first call writes the row (taking the lock); the
// later ones count on in memory, and the counter is written once more
// before the commit (saveStreamPos): a batch of many events writes it
// twice instead of once an event. A savepoint rolled back gives back the
// positions taken since, as it undoes the writes.
func (tx *Tx) NextStreamPos(ctx context.Context) (int64, error) {
	c := &tx.stream
	if c.held {
		c.pos++
		c.unsaved = true
		return c.pos, nil
	}
	err := tx.q.QueryRowContext(ctx, `
		UPDATE stream_counter SET pos = pos + 1 WHERE id = 1 RETURNING pos`).Scan(&c.pos)
	if err != nil {
		return 0, fmt.Errorf("next stream position: %w", err)
	}
	c.held = true
	return c.pos, nil
}

// streamCounter is a transaction's hold on the stream counter.
type streamCounter struct {
	held    bool
	pos     int64 // the last position taken
	unsaved bool  // pos is ahead of the counter's row
}

// saveStreamPos writes the positions taken in memory back to the counter.
func (tx *Tx) saveStreamPos(ctx context.Context) error {
	if !tx.stream.unsaved {
		return nil
	}
	if _, err := tx.q.ExecContext(ctx, `UPDATE stream_counter SET pos = $1 WHERE id = 1`, tx.stream.pos); err != nil {
		return fmt.Errorf("save stream position: %w", err)
	}
	tx.stream.unsaved = false
	return nil
}

// StreamPos returns the highest committed stream position: every position
// at or below it is committed (or was rolled back and is never used).
func (db *DB) StreamPos(ctx context.Context) (int64, error) {
	var pos int64
	if err := db.read.QueryRowContext(ctx, `SELECT pos FROM stream_counter WHERE id = 1`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("stream position: %w", err)
	}
	return pos, nil
}

// PublishedPos returns the highest stream position up to which every room
// event is known to have been published on the bus.
func (db *DB) PublishedPos(ctx context.Context) (int64, error) {
	var pos int64
	if err := db.read.QueryRowContext(ctx, `SELECT pos FROM roomserver_published WHERE id = 1`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("published position: %w", err)
	}
	return pos, nil
}

// SetPublishedPos raises the publication marker to pos (it never goes back).
func (tx *Tx) SetPublishedPos(ctx context.Context, pos int64) error {
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE roomserver_published SET pos = $1 WHERE id = 1 AND pos < $1`, pos); err != nil {
		return fmt.Errorf("set published position: %w", err)
	}
	return nil
}

// SetPublishedPos is Tx.SetPublishedPos in a transaction of its own.
func (db *DB) SetPublishedPos(ctx context.Context, pos int64) error {
	return db.WithTx(ctx, func(tx *Tx) error { return tx.SetPublishedPos(ctx, pos) })
}

// Savepoint marks a point in the transaction that RollbackTo returns to,
// so that one piece of work in a shared transaction can be undone without
// the rest. name must be a plain SQL identifier chosen by the program.
func (tx *Tx) Savepoint(ctx context.Context, name string) error {
	if _, err := tx.tx.ExecContext(ctx, `SAVEPOINT `+name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if tx.savedStream == nil {
		tx.savedStream = map[string][]streamCounter{}
	}
	tx.savedStream[name] = append(tx.savedStream[name], tx.stream)
	return nil
}

// RollbackTo undoes everything since the savepoint name (which stays set).
func (tx *Tx) RollbackTo(ctx context.Context, name string) error {
	if _, err := tx.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT `+name); err != nil {
		return fmt.Errorf("roll back to savepoint: %w", err)
	}
	// The stream positions taken since are given back, as the writes.
	if saved := tx.savedStream[name]; len(saved) > 0 {
		tx.stream = saved[len(saved)-1]
	}
	return nil
}

// ReleaseSavepoint forgets the savepoint name, keeping the work done since.
func (tx *Tx) ReleaseSavepoint(ctx context.Context, name string) error {
	if _, err := tx.tx.ExecContext(ctx, `RELEASE SAVEPOINT `+name); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	if saved := tx.savedStream[name]; len(saved) > 0 {
		tx.savedStream[name] = saved[:len(saved)-1]
	}
	return nil
}
