package clientapi

// Room upgrades (client-server-api "Room Upgrades", room_upgrades.yaml):
// POST /rooms/{roomId}/upgrade. The server behaviour the module lists, in
// order: check the user may send m.room.tombstone; create the replacement
// room with predecessor, the room version and the old room's type; copy the
// transferable state (with the user's power raised while copying, then
// restored) and the bans; move the local aliases and the canonical alias;
// tombstone the old room; and restrict its power levels so that nobody but
// moderators talks or invites there any more.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	rsauth "github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func (a *API) registerUpgrade(r *mux.Router) {
	r.HandleFunc(v3Prefix+"rooms/{roomId}/upgrade", a.auth.Required(a.postUpgrade)).Methods(http.MethodPost)
}

// upgradeCopiedState are the state events copied to the replacement room
// (the module's recommended list; power levels are handled apart).
var upgradeCopiedState = []string{
	"m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic",
	"m.room.guest_access", "m.room.history_visibility", "m.room.join_rules",
}

// postUpgrade implements POST /rooms/{roomId}/upgrade.
func (a *API) postUpgrade(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	oldRoom, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var body struct {
		NewVersion         *string  `json:"new_version"`
		AdditionalCreators []string `json:"additional_creators"`
	}
	if _, err := readObjectInto(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if body.NewVersion == nil {
		httputil.WriteError(w, r, httputil.MissingParam(`"new_version" is required`))
		return
	}
	newVer, err := pdu.GetRoomVersion(*body.NewVersion)
	if err != nil {
		httputil.WriteError(w, r, httputil.NewError(http.StatusBadRequest, httputil.CodeUnsupportedRoomVersion,
			fmt.Sprintf("this server does not support room version %q", *body.NewVersion)))
		return
	}
	for _, u := range body.AdditionalCreators {
		if err := checkUserID(u); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	ctx := r.Context()
	if err := a.checkRoomExists(ctx, oldRoom); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ok, err := a.canSendState(ctx, oldRoom, d.UserID, "m.room.tombstone")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !ok {
		httputil.WriteError(w, r, httputil.Forbidden("you cannot upgrade this room: you need the power to send m.room.tombstone"))
		return
	}
	newRoom, err := a.upgradeRoom(ctx, d.UserID, oldRoom, newVer, body.AdditionalCreators)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"replacement_room": newRoom})
}

// upgradeRoom replaces oldRoom with a new room of version newVer, created
// by user, and returns the new room's ID.
func (a *API) upgradeRoom(ctx context.Context, user, oldRoom string, newVer *pdu.RoomVersion, additionalCreators []string) (string, error) {
	oldVer, err := a.rs.RoomVersion(ctx, oldRoom)
	if err != nil {
		return "", roomError(err)
	}
	state, err := a.rs.CurrentState(ctx, oldRoom)
	if err != nil {
		return "", roomError(err)
	}
	byKey := map[pdu.StateKey]*pdu.Event{}
	for _, ev := range state {
		byKey[ev.StateTuple()] = ev
	}
	oldCreate := byKey[pdu.StateKey{Type: "m.room.create"}]
	if oldCreate == nil {
		return "", httputil.NotFound("room not found")
	}

	// The create event: predecessor, version, and what the old room's
	// creation content said about the room itself.
	creation := map[string]any{}
	predecessor := map[string]string{"room_id": oldRoom}
	if last, err := a.db.LatestEventBefore(ctx, oldRoom, 1<<62); err != nil {
		return "", err
	} else if last != nil {
		predecessor["event_id"] = last.EventID
	}
	creation["predecessor"] = predecessor
	for _, key := range []string{"type", "m.federate"} {
		if v := gjson.GetBytes(oldCreate.Content(), gjsonEscape(key)); v.Exists() {
			creation[key] = json.RawMessage(v.Raw)
		}
	}
	var creators []string
	if newVer.PrivilegedCreators {
		creators = append(creators, user)
		for _, u := range additionalCreators {
			if !slices.Contains(creators, u) {
				creators = append(creators, u)
			}
		}
		if len(additionalCreators) > 0 {
			creation["additional_creators"] = additionalCreators
		}
	}
	creationContent, err := json.Marshal(creation)
	if err != nil {
		return "", err
	}

	// Power levels: the old room's, fitted to the new version, with the
	// upgrading user raised (when needed) to send everything copied.
	plContent := map[string]json.RawMessage{}
	if pl := byKey[pdu.StateKey{Type: "m.room.power_levels"}]; pl != nil {
		_ = json.Unmarshal(pl.Content(), &plContent)
	} else {
		// A room without power levels (its creator implicitly at 100)
		// gets the levels of a new private room.
		plContent = defaultPowerLevels(newVer, user, presets[presetPrivateChat], nil)
	}
	users := map[string]json.RawMessage{}
	_ = json.Unmarshal(plContent["users"], &users)
	if newVer.PrivilegedCreators {
		// Creators have infinite power and must not be listed.
		for _, c := range creators {
			delete(users, c)
		}
	} else if oldVer.PrivilegedCreators {
		// Creators of the old room lose their infinite power: they keep
		// the highest ordinary level instead.
		oldLevels, err := rsauth.PowerLevelsFromState(oldCreate, byKey[pdu.StateKey{Type: "m.room.power_levels"}])
		if err != nil {
			return "", err
		}
		for _, c := range oldLevels.Creators {
			users[c] = json.RawMessage("100")
		}
	}
	plContent["users"], _ = json.Marshal(users)
	final, _ := json.Marshal(plContent)
	initialPL := final
	if !newVer.PrivilegedCreators {
		levels, err := rsauth.ParsePowerLevels(newVer, final)
		if err != nil {
			return "", httputil.NewError(http.StatusBadRequest, codeInvalidRoomState, "the room's power levels cannot be carried to version "+newVer.ID+": "+err.Error())
		}
		need := max(levels.StateDefault, levels.Ban, levels.Invite, levels.EventLevel("m.room.power_levels", true))
		for _, l := range levels.Events {
			need = max(need, l)
		}
		if levels.UserLevel(user) < need {
			raised := map[string]json.RawMessage{}
			for k, v := range users {
				raised[k] = v
			}
			raised[user], _ = json.Marshal(need)
			tmp := map[string]json.RawMessage{}
			for k, v := range plContent {
				tmp[k] = v
			}
			tmp["users"], _ = json.Marshal(raised)
			initialPL, _ = json.Marshal(tmp)
		}
	}

	plan := &createRoomPlan{Version: newVer, CreationContent: creationContent}
	add := func(typ, key string, content json.RawMessage) {
		plan.Events = append(plan.Events, plannedEvent{Type: typ, StateKey: key, Content: content})
	}
	joinContent, _ := json.Marshal(memberContent("join", a.memberProfileOf(ctx, user), false))
	add("m.room.member", user, joinContent)
	add("m.room.power_levels", "", initialPL)
	for _, typ := range upgradeCopiedState {
		if ev := byKey[pdu.StateKey{Type: typ}]; ev != nil {
			add(typ, "", ev.Content())
		}
	}
	if ca := byKey[pdu.StateKey{Type: "m.room.canonical_alias"}]; ca != nil {
		add("m.room.canonical_alias", "", ca.Content())
	}
	// Bans carry over (as Synapse does): a banned user should not walk
	// into the replacement.
	for _, ev := range state {
		if ev.Type() == "m.room.member" && ev.Membership() == "ban" && *ev.StateKey() != user {
			ban := map[string]any{"membership": "ban"}
			if reason := gjson.GetBytes(ev.Content(), "reason"); reason.Type == gjson.String {
				ban["reason"] = reason.Str
			}
			c, _ := json.Marshal(ban)
			add("m.room.member", *ev.StateKey(), c)
		}
	}
	if string(initialPL) != string(final) {
		add("m.room.power_levels", "", final)
	}
	published, err := a.db.IsRoomPublished(ctx, oldRoom)
	if err != nil {
		return "", err
	}
	plan.Publish = published

	newRoom, err := a.createRoom(ctx, user, plan)
	if err != nil {
		return "", err
	}
	// The new room exists: finish the upgrade whatever the client does.
	ctx = context.WithoutCancel(ctx)
	if _, err := a.db.MoveAliases(ctx, oldRoom, newRoom); err != nil {
		return "", err
	}
	if published {
		if err := a.db.SetRoomPublished(ctx, oldRoom, false); err != nil {
			return "", err
		}
	}

	// Tombstone the old room, then quieten it.
	tomb, _ := json.Marshal(map[string]string{"body": "This room has been replaced", "replacement_room": newRoom})
	if _, err := a.sendState(ctx, oldRoom, user, "m.room.tombstone", "", tomb); err != nil {
		return "", err
	}
	a.restrictOldRoom(ctx, oldRoom, user, byKey)
	return newRoom, nil
}

// restrictOldRoom does what the module's step 6 suggests, where the user
// may: the old room's canonical alias is removed (its aliases moved) and
// its power levels raise events_default and invite to the greater of 50
// and users_default + 1. Failures are logged: the upgrade has happened.
func (a *API) restrictOldRoom(ctx context.Context, oldRoom, user string, byKey map[pdu.StateKey]*pdu.Event) {
	log := httputil.Logger(ctx)
	if byKey[pdu.StateKey{Type: "m.room.canonical_alias"}] != nil {
		if _, err := a.sendState(ctx, oldRoom, user, "m.room.canonical_alias", "", json.RawMessage(`{}`)); err != nil {
			log.InfoContext(ctx, "upgrade: cannot clear the old room's canonical alias", "room", oldRoom, "err", err)
		}
	}
	levels, err := a.powerLevels(ctx, oldRoom)
	if err != nil {
		log.WarnContext(ctx, "upgrade: cannot read the old room's power levels", "room", oldRoom, "err", err)
		return
	}
	restricted := max(int64(50), levels.UsersDefault+1)
	if levels.EventsDefault >= restricted && levels.Invite >= restricted {
		return
	}
	content := map[string]json.RawMessage{}
	if pl := byKey[pdu.StateKey{Type: "m.room.power_levels"}]; pl != nil {
		_ = json.Unmarshal(pl.Content(), &content)
	} else {
		// Without a power levels event the creator's 100 is implicit;
		// the new event must say it, or it would take it away.
		content["users"], _ = json.Marshal(levels.Users)
	}
	for _, k := range []string{"events_default", "invite"} {
		content[k], _ = json.Marshal(max(restricted, map[string]int64{"events_default": levels.EventsDefault, "invite": levels.Invite}[k]))
	}
	raw, _ := json.Marshal(content)
	if _, err := a.sendState(ctx, oldRoom, user, "m.room.power_levels", "", raw); err != nil {
		log.InfoContext(ctx, "upgrade: cannot restrict the old room's power levels", "room", oldRoom, "err", err)
	}
}
