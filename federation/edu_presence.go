package federation

// Received presence (server-server-api "Presence"): a remote server's
// users' presence, stored beside local users' (storage.Presence with
// RemoteTS set) and shown by /sync to those sharing a room with them. The
// sync API's sweeper marks them offline when their server falls silent.

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

const (
	eduPresence = "m.presence"
	// maxPresencePerEDU bounds the updates applied from one EDU.
	maxPresencePerEDU = 1000
)

// remotePresence is one entry of an m.presence EDU's push list.
type remotePresence struct {
	UserID          string  `json:"user_id"`
	Presence        string  `json:"presence"`
	StatusMsg       *string `json:"status_msg"`
	LastActiveAgo   int64   `json:"last_active_ago"`
	CurrentlyActive bool    `json:"currently_active"`
}

// receivePresence applies an m.presence EDU: {push: [{user_id, presence,
// status_msg, last_active_ago, currently_active}]}. Each user must be
// origin's and share a room with a user of this server.
func (a *API) receivePresence(ctx context.Context, origin string, content json.RawMessage) error {
	var c struct {
		Push []json.RawMessage `json:"push"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		ignoreEDU(ctx, origin, eduPresence, "malformed")
		return nil
	}
	for i, raw := range c.Push {
		if i == maxPresencePerEDU {
			ignoreEDU(ctx, origin, eduPresence, "too many updates", "ignored", len(c.Push)-i)
			break
		}
		var p remotePresence
		if err := json.Unmarshal(raw, &p); err != nil || p.UserID == "" {
			ignoreEDU(ctx, origin, eduPresence, "malformed update")
			continue
		}
		switch {
		case roomserver.UserServer(p.UserID) != origin:
			ignoreEDU(ctx, origin, eduPresence, "the user is not the origin's", "user", p.UserID)
			continue
		case p.Presence != "online" && p.Presence != "unavailable" && p.Presence != "offline":
			ignoreEDU(ctx, origin, eduPresence, "unknown presence state", "user", p.UserID)
			continue
		}
		shares, err := a.db.SharesRoomWithServer(ctx, p.UserID, a.cfg.ServerName)
		if err != nil {
			return err
		}
		if !shares {
			ignoreEDU(ctx, origin, eduPresence, "the user shares no room with this server's users", "user", p.UserID)
			continue
		}
		if err := a.storeRemotePresence(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// storeRemotePresence stores one user's presence and, when others see a
// change, wakes the syncs of the user's rooms.
func (a *API) storeRemotePresence(ctx context.Context, p remotePresence) error {
	now := a.now().UnixMilli()
	var pos int64
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		old, err := tx.GetPresence(ctx, p.UserID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		next := storage.Presence{
			UserID: p.UserID, State: p.Presence, StatusMsg: p.StatusMsg,
			LastActiveTS: now - max(0, p.LastActiveAgo), CurrentlyActive: p.CurrentlyActive,
			RemoteTS: now,
		}
		visible := old == nil || old.State != next.State || old.CurrentlyActive != next.CurrentlyActive ||
			!sameString(old.StatusMsg, next.StatusMsg)
		pos, err = tx.PutPresence(ctx, next, visible)
		return err
	})
	if err != nil || pos == 0 {
		return err
	}
	rooms, err := a.db.RoomsForUser(ctx, p.UserID, "join")
	if err != nil {
		return err
	}
	for _, roomID := range rooms {
		n := bus.SyncNotification{Pos: pos, RoomID: roomID, Kind: bus.SyncKindPresence}
		if err := bus.NotifySync(ctx, a.bus, n); err != nil {
			// Stored: syncs see it at their next call.
			httputil.Logger(ctx).WarnContext(ctx, "cannot publish a sync notification", "err", err)
			break
		}
	}
	return nil
}

func sameString(x, y *string) bool {
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}
