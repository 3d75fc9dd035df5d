package storage

// Queries on device lists over federation (migrations/0016): local users'
// device list changes waiting to become EDUs (e2ee_device_list_outbound,
// with the stream_id chain in e2ee_device_list_changes.device_stream_id),
// and the cache of remote users' device lists (e2ee_remote_device_lists,
// the devices themselves in e2ee_device_keys and e2ee_cross_signing_keys).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// QueueDeviceListUpdates records, for the servers sharing a room with the
// local user userID, that the devices deviceIDs were added, changed or
// deleted. Each gets its own stream_id (a new stream position), chained by
// prev_id to the user's previous update, so that a server that misses one
// sees the gap. Call it after MarkDeviceListChanged, in the same
// transaction.
func (tx *Tx) QueueDeviceListUpdates(ctx context.Context, userID string, deviceIDs []string) error {
	if len(deviceIDs) == 0 {
		return nil
	}
	var prev int64
	err := tx.q.QueryRowContext(ctx, `
		SELECT device_stream_id FROM e2ee_device_list_changes WHERE user_id = $1`, userID).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("device list stream ID of %q: %w", userID, err)
	}
	for _, d := range deviceIDs {
		pos, err := tx.NextStreamPos(ctx)
		if err != nil {
			return err
		}
		_, err = tx.q.ExecContext(ctx, `
			INSERT INTO e2ee_device_list_outbound (user_id, device_id, stream_id, prev_id) VALUES ($1, $2, $3, $4)`,
			userID, d, pos, prev)
		if err != nil {
			return fmt.Errorf("queue a device list update of %q %q: %w", userID, d, err)
		}
		prev = pos
	}
	_, err = tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_device_list_changes (user_id, stream_pos, device_stream_id) VALUES ($1, $2, $2)
		ON CONFLICT (user_id) DO UPDATE SET device_stream_id = excluded.device_stream_id`, userID, prev)
	if err != nil {
		return fmt.Errorf("device list stream ID of %q: %w", userID, err)
	}
	return nil
}

// QueueSigningKeyUpdate records, for the servers sharing a room with the
// local user userID, that their master or self-signing key changed.
func (tx *Tx) QueueSigningKeyUpdate(ctx context.Context, userID string) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_device_list_outbound (user_id, device_id, stream_id, prev_id) VALUES ($1, '', 0, 0)`, userID)
	if err != nil {
		return fmt.Errorf("queue a signing key update of %q: %w", userID, err)
	}
	return nil
}

// DeviceListUpdate is a local user's device list change waiting to be sent.
type DeviceListUpdate struct {
	NID      int64
	UserID   string
	DeviceID string // "" for the cross-signing keys
	StreamID int64
	PrevID   int64 // 0: the user's first update
}

// DeviceListUpdates returns up to limit waiting updates, oldest first.
func (db *DB) DeviceListUpdates(ctx context.Context, limit int) ([]DeviceListUpdate, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT outbound_nid, user_id, device_id, stream_id, prev_id FROM e2ee_device_list_outbound
		ORDER BY outbound_nid LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("device list updates to send: %w", err)
	}
	defer rows.Close()
	var out []DeviceListUpdate
	for rows.Next() {
		var u DeviceListUpdate
		if err := rows.Scan(&u.NID, &u.UserID, &u.DeviceID, &u.StreamID, &u.PrevID); err != nil {
			return nil, fmt.Errorf("device list updates to send: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("device list updates to send: %w", err)
	}
	return out, nil
}

// DeleteDeviceListUpdates deletes the waiting updates nids and returns how
// many it deleted: fewer means another process took some of them first.
func (tx *Tx) DeleteDeviceListUpdates(ctx context.Context, nids []int64) (int64, error) {
	var total int64
	for part := range chunks(nids, inChunk) {
		args := make([]any, len(part))
		for i, n := range part {
			args[i] = n
		}
		res, err := tx.q.ExecContext(ctx, `DELETE FROM e2ee_device_list_outbound WHERE outbound_nid IN (`+
			inList(1, len(part))+`)`, args...)
		if err != nil {
			return 0, fmt.Errorf("delete sent device list updates: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("delete sent device list updates: %w", err)
		}
		total += n
	}
	return total, nil
}

// RemoteDeviceList is what this server knows of a remote user's device
// list.
type RemoteDeviceList struct {
	// StreamID is the stream_id of the last update applied, or of the
	// last full fetch.
	StreamID int64
	// Stale: an update could not be applied (a gap), so the cached list
	// is not to be trusted until fetched again.
	Stale bool
}

// RemoteDeviceList returns the state of userID's cached device list, nil
// when there is none.
func (tx *Tx) RemoteDeviceList(ctx context.Context, userID string) (*RemoteDeviceList, error) {
	var l RemoteDeviceList
	err := tx.q.QueryRowContext(ctx, `
		SELECT stream_id, stale FROM e2ee_remote_device_lists WHERE user_id = $1`, userID).Scan(&l.StreamID, &l.Stale)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cached device list of %q: %w", userID, err)
	}
	return &l, nil
}

// SetRemoteDeviceList records the state of userID's cached device list.
func (tx *Tx) SetRemoteDeviceList(ctx context.Context, userID string, l RemoteDeviceList) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_remote_device_lists (user_id, stream_id, stale, updated_ts) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id, stale = excluded.stale,
			updated_ts = excluded.updated_ts`, userID, l.StreamID, l.Stale, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("cached device list of %q: %w", userID, err)
	}
	return nil
}

// MarkRemoteDeviceListStale marks userID's cached device list stale (one
// is recorded when there was none).
func (tx *Tx) MarkRemoteDeviceListStale(ctx context.Context, userID string) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_remote_device_lists (user_id, stream_id, stale, updated_ts) VALUES ($1, 0, TRUE, $2)
		ON CONFLICT (user_id) DO UPDATE SET stale = TRUE, updated_ts = excluded.updated_ts`,
		userID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("mark the device list of %q stale: %w", userID, err)
	}
	return nil
}

// RemoteDeviceListState says how a remote user's keys are to be found.
type RemoteDeviceListState struct {
	// Cached: the cached list is complete (fetched, not stale).
	Cached bool
	// SharesRoom: the user is joined to a room a local user is joined to,
	// so their server sends updates of the list here.
	SharesRoom bool
}

// RemoteDeviceListStates returns the state of each of the remote users
// userIDs; localServer is this server's name.
func (db *DB) RemoteDeviceListStates(ctx context.Context, userIDs []string, localServer string) (map[string]RemoteDeviceListState, error) {
	out := make(map[string]RemoteDeviceListState, len(userIDs))
	for chunk := range chunks(userIDs, inChunk-1) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, "%:"+likeEscape(localServer))
		for _, u := range chunk {
			args = append(args, u)
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT 'c', user_id FROM e2ee_remote_device_lists
			WHERE user_id IN (`+inList(2, len(chunk))+`) AND stale = FALSE
			UNION ALL
			SELECT DISTINCT 's', theirs.user_id FROM room_memberships theirs
			JOIN room_memberships ours ON ours.room_nid = theirs.room_nid
			WHERE theirs.user_id IN (`+inList(2, len(chunk))+`) AND theirs.membership = 'join'
			  AND ours.membership = 'join' AND ours.user_id LIKE $1 ESCAPE '\'`, args...)
		if err != nil {
			return nil, fmt.Errorf("cached device lists: %w", err)
		}
		for rows.Next() {
			var kind, user string
			if err := rows.Scan(&kind, &user); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cached device lists: %w", err)
			}
			st := out[user]
			if kind == "c" {
				st.Cached = true
			} else {
				st.SharesRoom = true
			}
			out[user] = st
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("cached device lists: %w", err)
		}
	}
	return out, nil
}

// StaleRemoteDeviceLists returns up to limit remote users whose cached
// device list is stale, least recently touched first.
func (db *DB) StaleRemoteDeviceLists(ctx context.Context, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT user_id FROM e2ee_remote_device_lists WHERE stale = TRUE ORDER BY updated_ts LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("stale device lists: %w", err)
	}
	out, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("stale device lists: %w", err)
	}
	return out, nil
}

// SetRemoteDeviceKeys stores the keys of a remote user's device as its
// server sent them (canonical JSON), with the device's name.
func (tx *Tx) SetRemoteDeviceKeys(ctx context.Context, userID, deviceID string, keyJSON []byte, displayName *string) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_device_keys (user_id, device_id, key_json, display_name) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json, display_name = excluded.display_name`,
		userID, deviceID, string(keyJSON), displayName)
	if err != nil {
		return fmt.Errorf("cache the keys of %q %q: %w", userID, deviceID, err)
	}
	return nil
}

// DeleteRemoteDevices forgets the cached keys of a remote user's devices
// deviceIDs, or of all their devices when deviceIDs is nil.
func (tx *Tx) DeleteRemoteDevices(ctx context.Context, userID string, deviceIDs []string) error {
	if deviceIDs == nil {
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM e2ee_device_keys WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("forget the devices of %q: %w", userID, err)
		}
		return nil
	}
	for _, d := range deviceIDs {
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM e2ee_device_keys WHERE user_id = $1 AND device_id = $2`, userID, d); err != nil {
			return fmt.Errorf("forget the device %q of %q: %w", d, userID, err)
		}
	}
	return nil
}

// DeleteCrossSigningKey deletes userID's cross-signing key of type keyType.
func (tx *Tx) DeleteCrossSigningKey(ctx context.Context, userID, keyType string) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM e2ee_cross_signing_keys WHERE user_id = $1 AND key_type = $2`, userID, keyType)
	if err != nil {
		return fmt.Errorf("delete the %s key of %q: %w", keyType, userID, err)
	}
	return nil
}

// MarkUnsharedRemoteDeviceListsStale marks stale the cached device lists
// of the members of roomID (any membership) who no longer share a room
// with a user of localServer: after a leave, a kick or a ban in the room,
// their servers stop sending updates here, so the cache cannot be trusted
// if they share a room again. It returns how many it marked.
func (db *DB) MarkUnsharedRemoteDeviceListsStale(ctx context.Context, roomID, localServer string) (int64, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.q.ExecContext(ctx, `
			UPDATE e2ee_remote_device_lists SET stale = TRUE, updated_ts = $3
			WHERE stale = FALSE AND user_id IN (
				SELECT m.user_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
				WHERE r.room_id = $1)
			AND NOT EXISTS (
				SELECT 1 FROM room_memberships theirs
				JOIN room_memberships ours ON ours.room_nid = theirs.room_nid
				WHERE theirs.user_id = e2ee_remote_device_lists.user_id AND theirs.membership = 'join'
				  AND ours.membership = 'join' AND ours.user_id LIKE $2 ESCAPE '\')`,
			roomID, "%:"+likeEscape(localServer), time.Now().UnixMilli())
		if err != nil {
			return fmt.Errorf("device lists no longer shared after a leave in %s: %w", roomID, err)
		}
		n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("device lists no longer shared after a leave in %s: %w", roomID, err)
		}
		return nil
	})
	return n, err
}

// ForgetRemoteDeviceList drops everything cached of the remote user
// userID's keys (not the signatures our users made of them): the list is
// no longer followed.
func (tx *Tx) ForgetRemoteDeviceList(ctx context.Context, userID string) error {
	for _, q := range []string{
		`DELETE FROM e2ee_remote_device_lists WHERE user_id = $1`,
		`DELETE FROM e2ee_device_keys WHERE user_id = $1`,
		`DELETE FROM e2ee_cross_signing_keys WHERE user_id = $1`,
	} {
		if _, err := tx.q.ExecContext(ctx, q, userID); err != nil {
			return fmt.Errorf("forget the cached keys of %q: %w", userID, err)
		}
	}
	return nil
}
