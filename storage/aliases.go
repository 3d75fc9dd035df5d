package storage

// Queries on the room_aliases table (migrations/0004_room_directory.sql).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrAliasExists is returned (wrapped) by CreateAlias and ReserveAlias when
// the alias already maps to a room.
var ErrAliasExists = errors.New("room alias already exists")

// aliasReservationTTL is how long a reservation (ReserveAlias) holds an
// alias without being completed. A reservation older than this was left by
// a process that died while creating its room, and a new CreateAlias or
// ReserveAlias may take the alias.
const aliasReservationTTL = 5 * time.Minute

// RoomAlias is one mapping of a local room alias.
type RoomAlias struct {
	Alias   string
	RoomID  string
	Creator string // the user ID that created the mapping
}

// CreateAlias maps alias to roomID, created by creator. It returns an error
// wrapping ErrAliasExists if the alias is taken.
func (db *DB) CreateAlias(ctx context.Context, alias, roomID, creator string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		return tx.CreateAlias(ctx, alias, roomID, creator)
	})
}

// CreateAlias is DB.CreateAlias within tx.
func (tx *Tx) CreateAlias(ctx context.Context, alias, roomID, creator string) error {
	if roomID == "" {
		return fmt.Errorf("create alias %q: empty room ID", alias)
	}
	return tx.insertAlias(ctx, alias, roomID, creator)
}

// ReserveAlias holds alias for creator while a room is being created for it
// (POST /createRoom with room_alias_name, where the room ID is known only
// after the room exists): the alias is taken at once, so two requests
// cannot both pass the availability check, but it resolves to nothing until
// CompleteAlias names the room. A reservation that is neither completed nor
// released within a few minutes expires. It returns an error wrapping
// ErrAliasExists if the alias is taken.
func (db *DB) ReserveAlias(ctx context.Context, alias, creator string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		return tx.insertAlias(ctx, alias, "", creator)
	})
}

// CompleteAlias points a reservation made by ReserveAlias at roomID.
func (db *DB) CompleteAlias(ctx context.Context, alias, roomID string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE room_aliases SET room_id = $2 WHERE alias = $1 AND room_id = ''`, alias, roomID)
		if err != nil {
			return fmt.Errorf("complete alias %q: %w", alias, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("complete alias %q: the reservation is gone (%d rows, %v): %w", alias, n, err, ErrNotFound)
		}
		return nil
	})
}

// ReleaseAlias drops a reservation made by ReserveAlias, after the room
// could not be created. A completed alias is left alone.
func (db *DB) ReleaseAlias(ctx context.Context, alias string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `
			DELETE FROM room_aliases WHERE alias = $1 AND room_id = ''`, alias); err != nil {
			return fmt.Errorf("release alias %q: %w", alias, err)
		}
		return nil
	})
}

func (tx *Tx) insertAlias(ctx context.Context, alias, roomID, creator string) error {
	if alias == "" {
		return errors.New("create alias: empty alias")
	}
	now := time.Now().UnixMilli()
	// A stale reservation (room_id '' and old) is replaced; anything else
	// makes the insert a no-op, which RowsAffected reports.
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO room_aliases (alias, room_id, creator, created_ts)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (alias) DO UPDATE
			SET room_id = excluded.room_id, creator = excluded.creator, created_ts = excluded.created_ts
			WHERE room_aliases.room_id = '' AND room_aliases.created_ts < $5`,
		alias, roomID, creator, now, now-aliasReservationTTL.Milliseconds())
	if err != nil {
		return fmt.Errorf("create alias %q: %w", alias, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("create alias %q: %w", alias, err)
	}
	if n == 0 {
		return fmt.Errorf("create alias %q: %w", alias, ErrAliasExists)
	}
	return nil
}

// GetAlias returns the mapping of alias, or an error wrapping ErrNotFound
// (also for an alias that is only reserved).
func (db *DB) GetAlias(ctx context.Context, alias string) (*RoomAlias, error) {
	a := RoomAlias{Alias: alias}
	err := db.read.QueryRowContext(ctx, `
		SELECT room_id, creator FROM room_aliases WHERE alias = $1 AND room_id <> ''`, alias).
		Scan(&a.RoomID, &a.Creator)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("room alias %q: %w", alias, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get room alias %q: %w", alias, err)
	}
	return &a, nil
}

// DeleteAlias removes the mapping of alias. It returns an error wrapping
// ErrNotFound if there is none.
func (db *DB) DeleteAlias(ctx context.Context, alias string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			DELETE FROM room_aliases WHERE alias = $1 AND room_id <> ''`, alias)
		if err != nil {
			return fmt.Errorf("delete room alias %q: %w", alias, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("delete room alias %q: %w", alias, err)
		}
		if n == 0 {
			return fmt.Errorf("room alias %q: %w", alias, ErrNotFound)
		}
		return nil
	})
}

// AliasesForRoom returns the local aliases of roomID, sorted.
func (db *DB) AliasesForRoom(ctx context.Context, roomID string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias`, roomID)
	if err != nil {
		return nil, fmt.Errorf("aliases of room %q: %w", roomID, err)
	}
	defer rows.Close()
	aliases := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("aliases of room %q: %w", roomID, err)
		}
		aliases = append(aliases, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aliases of room %q: %w", roomID, err)
	}
	return aliases, nil
}

// MoveAliases points every local alias of fromRoom at toRoom (a room
// upgrade, client-server-api "Room Upgrades" step 4) and returns how many
// moved.
func (db *DB) MoveAliases(ctx context.Context, fromRoom, toRoom string) (int64, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE room_aliases SET room_id = $2 WHERE room_id = $1`, fromRoom, toRoom)
		if err != nil {
			return fmt.Errorf("move aliases of room %q: %w", fromRoom, err)
		}
		n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("move aliases of room %q: %w", fromRoom, err)
		}
		return nil
	})
	return n, err
}
