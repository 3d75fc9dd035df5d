package storage

// Queries of the user directory search (client-server-api "User
// directory"): which users a searcher may find, with what the rooms say
// about them. They read the roomserver's membership and current-state
// tables (migrations/0003_rooms.sql) and the accounts and profiles, and
// write nothing.

import (
	"context"
	"fmt"
	"strings"
)

// DirectoryCandidate is a user the search may return: a member event's
// JSON (for a user found through a room) or a local profile.
type DirectoryCandidate struct {
	UserID string
	// MemberJSON is the user's m.room.member event in a visible room, or
	// "" for a candidate found among local accounts.
	MemberJSON string
	// DisplayName and AvatarURL are the JSON values of a local user's
	// profile fields, or "" when unset (or for a room candidate).
	DisplayName, AvatarURL string
}

// likePattern is a case-insensitive LIKE pattern for "contains term",
// with LIKE's wildcards in term escaped (used with ESCAPE '\').
func likePattern(term string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(term)) + "%"
}

// JoinedRoomNIDs returns the numeric IDs of the rooms userID has joined.
func (db *DB) JoinedRoomNIDs(ctx context.Context, userID string) ([]int64, error) {
	return queryInt64s(ctx, db.read, `
		SELECT room_nid FROM room_memberships WHERE user_id = $1 AND membership = 'join'`, userID)
}

// openRoomStateQuery finds the rooms' join rules and history visibility
// events from their two state keys (events_state_key_stream), keeping
// those in the current state: one row per such event of the server.
// (Found from room_state instead, a search read every member of every
// room, on each keystroke of a user looking for someone.)
const openRoomStateQuery = `
	SELECT rs.room_nid, e.json FROM state_keys sk
	JOIN events e ON e.state_key_nid = sk.state_key_nid
	JOIN room_state rs ON rs.room_nid = e.room_nid AND rs.state_key_nid = e.state_key_nid AND rs.event_nid = e.event_nid
	WHERE sk.state_key = '' AND (
		(sk.event_type = 'm.room.join_rules' AND e.json LIKE '%public%') OR
		(sk.event_type = 'm.room.history_visibility' AND e.json LIKE '%world_readable%'))`

// OpenRoomStateJSON returns, for every room whose current join rules or
// history visibility mention "public" or "world_readable", the room's
// numeric ID and that state event's JSON. The caller parses the JSON:
// LIKE only narrows the rows.
func (db *DB) OpenRoomStateJSON(ctx context.Context) (nids []int64, jsons []string, err error) {
	rows, err := db.read.QueryContext(ctx, openRoomStateQuery)
	if err != nil {
		return nil, nil, fmt.Errorf("open rooms: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var nid int64
		var js string
		if err := rows.Scan(&nid, &js); err != nil {
			return nil, nil, fmt.Errorf("open rooms: %w", err)
		}
		nids, jsons = append(nids, nid), append(jsons, js)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("open rooms: %w", err)
	}
	return nids, jsons, nil
}

// roomNIDChunk bounds the IDs in one IN list.
const roomNIDChunk = 500

// DirectoryMembers returns the joined members of the given rooms whose
// member event contains term (case-insensitively, as a prefilter), with
// that event's JSON, at most limit rows.
func (db *DB) DirectoryMembers(ctx context.Context, roomNIDs []int64, term string, limit int) ([]DirectoryCandidate, error) {
	var out []DirectoryCandidate
	for start := 0; start < len(roomNIDs) && len(out) < limit; start += roomNIDChunk {
		chunk := roomNIDs[start:min(start+roomNIDChunk, len(roomNIDs))]
		args := []any{likePattern(term), limit - len(out)}
		marks := make([]string, len(chunk))
		for i, nid := range chunk {
			args = append(args, nid)
			marks[i] = fmt.Sprintf("$%d", i+3)
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT m.user_id, e.json FROM room_memberships m
			JOIN events e ON e.event_nid = m.event_nid
			WHERE m.membership = 'join' AND m.room_nid IN (`+strings.Join(marks, ",")+`)
			AND LOWER(e.json) LIKE $1 ESCAPE '\'
			LIMIT $2`, args...)
		if err != nil {
			return nil, fmt.Errorf("directory members: %w", err)
		}
		for rows.Next() {
			var c DirectoryCandidate
			if err := rows.Scan(&c.UserID, &c.MemberJSON); err != nil {
				rows.Close()
				return nil, fmt.Errorf("directory members: %w", err)
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("directory members: %w", err)
		}
	}
	return out, nil
}

// DirectoryLocalUsers returns the active local accounts whose localpart or
// display name contains term (case-insensitively, as a prefilter), with
// their display name and avatar, at most limit rows. Localparts are
// returned in UserID; the caller makes user IDs of them.
func (db *DB) DirectoryLocalUsers(ctx context.Context, term string, limit int) ([]DirectoryCandidate, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT a.localpart, COALESCE(d.value, ''), COALESCE(av.value, '')
		FROM accounts a
		LEFT JOIN profile_fields d ON d.localpart = a.localpart AND d.field = 'displayname'
		LEFT JOIN profile_fields av ON av.localpart = a.localpart AND av.field = 'avatar_url'
		WHERE NOT a.deactivated AND (LOWER(a.localpart) LIKE $1 ESCAPE '\' OR LOWER(d.value) LIKE $1 ESCAPE '\')
		ORDER BY a.localpart
		LIMIT $2`, likePattern(term), limit)
	if err != nil {
		return nil, fmt.Errorf("directory local users: %w", err)
	}
	defer rows.Close()
	var out []DirectoryCandidate
	for rows.Next() {
		var c DirectoryCandidate
		if err := rows.Scan(&c.UserID, &c.DisplayName, &c.AvatarURL); err != nil {
			return nil, fmt.Errorf("directory local users: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("directory local users: %w", err)
	}
	return out, nil
}

func queryInt64s(ctx context.Context, q queryer, query string, args ...any) ([]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
