package clientapi

// What the room endpoints share: their routes, the translation of
// roomserver errors into Matrix errors, who may read a room, and the member
// profile put in member events. The endpoints themselves are in
// createroom.go, membership.go, rooms_read.go, events.go, aliases.go,
// directory.go and upgrade.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// registerRooms adds the room modules' routes, the busiest (sending
// events) first: see Register.
func (a *API) registerRooms(r *mux.Router) {
	a.registerEvents(r)
	a.registerCreateRoom(r)
	a.registerMembership(r)
	a.registerRoomReads(r)
	a.registerAliases(r)
	a.registerDirectory(r)
	a.registerUpgrade(r)
	a.registerHierarchy(r)
}

// roomError turns an error of the roomserver into the Matrix error a
// client gets: an unknown room or event is 404 M_NOT_FOUND, an event the
// auth rules refuse 403 M_FORBIDDEN with the rule's reason, a malformed
// event 400 M_BAD_JSON and an oversized one 413 M_TOO_LARGE. Anything else
// is returned as is (a 500 unless it is already an *httputil.Error).
func roomError(err error) error {
	var (
		me  *httputil.Error
		na  *auth.NotAllowedError
		fe  *pdu.FormatError
		je  *pdu.JSONError
		bad *roomserver.BadRequestError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &me):
		return me
	case errors.Is(err, roomserver.ErrRoomNotFound):
		return httputil.NotFound("room not found")
	case errors.Is(err, roomserver.ErrEventNotFound):
		return httputil.NotFound("event not found")
	case errors.As(err, &na):
		return httputil.Forbidden(na.Reason)
	case errors.As(err, &fe):
		// The whole event over 64 KiB (client-server-api "Size limits"),
		// or an ID-like field over 255 bytes: Synapse answers both 413.
		if errors.Is(err, pdu.ErrTooLarge) {
			return httputil.TooLarge("the event is too large: " + fe.Error())
		}
		return httputil.BadJSON(fe.Error())
	case errors.As(err, &je):
		return httputil.BadJSON("invalid JSON in the event: " + je.Error())
	case errors.As(err, &bad):
		return httputil.BadJSON(bad.Reason)
	}
	return err
}

// roomIDVar reads and checks the {roomId} path variable.
func roomIDVar(r *http.Request) (string, error) {
	id := httputil.PathVar(r, "roomId")
	if err := checkRoomID(id); err != nil {
		return "", err
	}
	return id, nil
}

// readAccess is what a user may read of a room (Synapse's
// check_user_in_room_or_world_readable with departed users allowed): the
// current state if they are joined or the room is world_readable; the
// state when they left if they left (and did not forget the room).
type readAccess struct {
	// Membership is the user's current membership ("" for none).
	Membership string
	// LeftAt is the user's leave event when they read the room as it was
	// when they left; nil when they read the current state.
	LeftAt *storage.EventRecord
	// Room is the room, for the storage reads.
	Room *storage.Room
}

// canRead decides readAccess for userID in roomID: 404 M_NOT_FOUND for an
// unknown room, 403 M_FORBIDDEN for a user who may not read it (never in it,
// banned, or forgot it after leaving), as Synapse answers.
func (a *API) canRead(ctx context.Context, userID, roomID string) (*readAccess, error) {
	room, err := a.db.Room(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, httputil.NotFound("room not found")
	}
	if err != nil {
		return nil, err
	}
	acc := &readAccess{Room: room}
	member, err := a.db.CurrentStateEvents(ctx, room.NID, []storage.StateKey{{Type: "m.room.member", StateKey: userID}})
	if err != nil {
		return nil, err
	}
	if len(member) == 1 {
		acc.Membership = member[0].Membership
	}
	switch acc.Membership {
	case "join":
		return acc, nil
	case "leave":
		forgotten, err := a.db.IsRoomForgotten(ctx, userID, roomID)
		if err != nil {
			return nil, err
		}
		if !forgotten {
			acc.LeftAt = member[0]
			return acc, nil
		}
	}
	hv, err := a.db.CurrentStateEvents(ctx, room.NID, []storage.StateKey{{Type: "m.room.history_visibility"}})
	if err != nil {
		return nil, err
	}
	if len(hv) == 1 && roomserver.HistoryVisibilityOf(hv[0].JSON) == "world_readable" {
		return acc, nil
	}
	return nil, httputil.Forbidden(fmt.Sprintf("user %s not in room %s, and room previews are disabled", userID, roomID))
}

// readableState reads, as readAccess allows, the room's state events of type
// evType ("" for every type).
func (a *API) readableState(ctx context.Context, acc *readAccess, evType string) ([]*storage.EventRecord, error) {
	if acc.LeftAt == nil {
		return a.db.CurrentState(ctx, acc.Room.NID, evType)
	}
	all, err := a.db.SnapshotEvents(ctx, acc.LeftAt.StateAfterNID)
	if err != nil || evType == "" {
		return all, err
	}
	out := all[:0]
	for _, ev := range all {
		if ev.Type == evType {
			out = append(out, ev)
		}
	}
	return out, nil
}

// memberProfileOf returns the displayname and avatar_url a member event of
// userID carries: the profile of a local user, nothing for a remote one
// (their server fills it in when they join).
func (a *API) memberProfileOf(ctx context.Context, userID string) memberProfile {
	local, server, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !ok || server != a.cfg.ServerName {
		return memberProfile{}
	}
	fields, err := a.db.Profile(ctx, local)
	if err != nil {
		// A profile is decoration: a member event without it is still
		// right, so a failed read does not fail the membership change.
		httputil.Logger(ctx).WarnContext(ctx, "cannot read the profile for a member event", "user", userID, "err", err)
		return memberProfile{}
	}
	var p memberProfile
	_ = json.Unmarshal(fields["displayname"], &p.DisplayName)
	_ = json.Unmarshal(fields["avatar_url"], &p.AvatarURL)
	return p
}

// contentString returns content.<key> of an event's JSON when it is a
// string ("" otherwise, also for a redacted event).
func contentString(eventJSON []byte, key string) string {
	v := gjson.GetBytes(eventJSON, "content."+gjsonEscape(key))
	if v.Type != gjson.String {
		return ""
	}
	return v.Str
}

// gjsonEscape escapes a key for a gjson path.
func gjsonEscape(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch c {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
