package federation

// Received typing notifications (server-server-api "Typing
// Notifications"): a remote user's typing goes on the bus
// (bus.TypingSubject), where every sync process applies it to its
// in-memory table, as it does a local user's.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
)

const eduTyping = "m.typing"

// RemoteTypingTimeout is how long a remote user's typing lasts unless
// their server says it again: the EDU carries no timeout, and servers
// repeat it while the user types (Synapse: every 40 s, kept for 60 s; this
// server's sender does the same).
const RemoteTypingTimeout = 60 * time.Second

// receiveTyping applies an m.typing EDU: {room_id, user_id, typing}. The
// user must be origin's and joined to a room origin may speak about.
func (a *API) receiveTyping(ctx context.Context, origin string, content json.RawMessage) error {
	var c struct {
		RoomID string `json:"room_id"`
		UserID string `json:"user_id"`
		Typing *bool  `json:"typing"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.RoomID == "" || c.UserID == "" || c.Typing == nil {
		ignoreEDU(ctx, origin, eduTyping, "malformed")
		return nil
	}
	if roomserver.UserServer(c.UserID) != origin {
		ignoreEDU(ctx, origin, eduTyping, "the user is not the origin's", "user", c.UserID)
		return nil
	}
	ok, err := a.roomAcceptsEDUsFrom(ctx, c.RoomID, origin)
	if err != nil {
		return err
	}
	if !ok {
		ignoreEDU(ctx, origin, eduTyping, "not a room shared with the origin, or its ACL denies the origin", "room", c.RoomID)
		return nil
	}
	m, err := a.rs.Membership(ctx, c.RoomID, c.UserID)
	if err != nil {
		return err
	}
	if m != "join" {
		ignoreEDU(ctx, origin, eduTyping, "the user is not joined to the room", "room", c.RoomID, "user", c.UserID)
		return nil
	}
	u := bus.TypingUpdate{RoomID: c.RoomID, UserID: c.UserID, Typing: *c.Typing}
	if u.Typing {
		u.DeadlineMS = a.now().Add(RemoteTypingTimeout).UnixMilli()
	}
	return bus.PublishTyping(a.bus, u)
}
