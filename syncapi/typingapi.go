package syncapi

// PUT /rooms/{roomId}/typing/{userId} (client-server-api "Typing
// Notifications").

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
)

type typingRequest struct {
	Typing  *bool  `json:"typing"`
	Timeout *int64 `json:"timeout"`
}

func (a *API) putTyping(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID, roomID, err := selfInRoom(r, d, "set typing notifications")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var req typingRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.Typing == nil {
		httputil.WriteError(w, r, httputil.MissingParam(`"typing" is required`))
		return
	}
	if req.Timeout != nil && *req.Timeout < 0 {
		httputil.WriteError(w, r, httputil.InvalidParam(`"timeout" must not be negative`))
		return
	}
	if err := a.requireJoined(r.Context(), roomID, userID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	u := typingUpdate{RoomID: roomID, UserID: userID, Typing: *req.Typing}
	if u.Typing {
		timeout := defaultTypingTimeout
		if req.Timeout != nil && *req.Timeout > 0 {
			timeout = min(time.Duration(*req.Timeout)*time.Millisecond, maxTypingTimeout)
		}
		u.DeadlineMS = time.Now().Add(timeout).UnixMilli()
	}
	// Applied here at once, so this process's syncs see it without the
	// round trip; the copy from the bus then changes nothing.
	a.typing.apply(u)
	a.publishTyping(u)
	writeEmpty(w, r)
}

func (a *API) publishTyping(u typingUpdate) {
	data, err := json.Marshal(u)
	if err == nil {
		err = a.bus.Conn().Publish(a.bus.Subject(typingSubject), data)
	}
	if err != nil {
		a.logger.Warn("cannot publish a typing notification", "err", err)
	}
}

// requireJoined answers 403 M_FORBIDDEN unless userID is joined to roomID.
func (a *API) requireJoined(ctx context.Context, roomID, userID string) error {
	m, err := a.db.Membership(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if m != "join" {
		return httputil.Forbidden(userID + " is not in room " + roomID)
	}
	return nil
}
