package clientapi

// The events of a new room (POST /createRoom): which state events the
// request implies, with what content, in the order the spec prescribes. It
// is pure (no I/O) so that the order and contents are unit-tested, and the
// handler only carries them out.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// createRoomRequest is the body of POST /createRoom. Objects the server
// passes on (creation_content, initial_state contents, the power levels
// override) stay raw so that their values reach the event unchanged.
type createRoomRequest struct {
	Visibility                string              `json:"visibility"`
	RoomAliasName             *string             `json:"room_alias_name"`
	Name                      *string             `json:"name"`
	Topic                     *string             `json:"topic"`
	Invite                    []string            `json:"invite"`
	Invite3PID                []json.RawMessage   `json:"invite_3pid"`
	RoomVersion               *string             `json:"room_version"`
	CreationContent           json.RawMessage     `json:"creation_content"`
	InitialState              []initialStateEvent `json:"initial_state"`
	Preset                    string              `json:"preset"`
	IsDirect                  bool                `json:"is_direct"`
	PowerLevelContentOverride json.RawMessage     `json:"power_level_content_override"`
}

type initialStateEvent struct {
	Type     *string         `json:"type"`
	StateKey *string         `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// The presets of POST /createRoom (its "preset" parameter).
const (
	presetPrivateChat        = "private_chat"
	presetTrustedPrivateChat = "trusted_private_chat"
	presetPublicChat         = "public_chat"
)

// presetState is what a preset sets: the table in create_room.yaml.
type presetState struct {
	JoinRule, HistoryVisibility, GuestAccess string
	// InviteesAreAdmins: "All invitees are given the same power level as
	// the room creator" (trusted_private_chat).
	InviteesAreAdmins bool
	// InviteLevel is the power level needed to invite. Synapse lowers it to
	// 0 in private chats, so that any member may invite, and keeps the
	// default 50 in public rooms; clients expect that.
	InviteLevel int64
}

var presets = map[string]presetState{
	presetPrivateChat:        {JoinRule: "invite", HistoryVisibility: "shared", GuestAccess: "can_join", InviteLevel: 0},
	presetTrustedPrivateChat: {JoinRule: "invite", HistoryVisibility: "shared", GuestAccess: "can_join", InviteesAreAdmins: true, InviteLevel: 0},
	presetPublicChat:         {JoinRule: "public", HistoryVisibility: "shared", GuestAccess: "forbidden", InviteLevel: 50},
}

// plannedEvent is one state event to send into the new room.
type plannedEvent struct {
	Type     string
	StateKey string
	Content  json.RawMessage
}

// memberProfile is the displayname and avatar_url that a member event
// carries for its target (empty when unset).
type memberProfile struct {
	DisplayName string
	AvatarURL   string
}

// createRoomPlan is everything POST /createRoom will do.
type createRoomPlan struct {
	Version *pdu.RoomVersion
	// CreationContent is merged by the roomserver into the m.room.create
	// content (which sets creator and room_version itself).
	CreationContent json.RawMessage
	// Events are the state events after m.room.create, in order: the
	// creator's join, power levels, canonical alias, preset, initial_state,
	// name and topic, then the invites.
	Events []plannedEvent
	// Alias is the full alias to map to the room ("" for none).
	Alias string
	// Publish puts the room in the published room directory.
	Publish bool
}

// planCreateRoom validates req and works out the new room's events. creator
// is the requesting user; profile gives the displayname and avatar of a
// user for their member event. Errors are *httputil.Error values: 400
// M_BAD_JSON for a body of the wrong shape, M_INVALID_PARAM for a bad
// identifier, M_UNSUPPORTED_ROOM_VERSION for an unknown version.
func planCreateRoom(req *createRoomRequest, creator, serverName string, profile func(userID string) memberProfile) (*createRoomPlan, error) {
	plan := &createRoomPlan{}

	// Room version.
	versionID := pdu.DefaultRoomVersion
	if req.RoomVersion != nil {
		versionID = *req.RoomVersion
	}
	ver, err := pdu.GetRoomVersion(versionID)
	if err != nil {
		return nil, httputil.NewError(400, httputil.CodeUnsupportedRoomVersion,
			fmt.Sprintf("this server does not support room version %q", versionID))
	}
	plan.Version = ver

	// Visibility and preset.
	switch req.Visibility {
	case "", "private":
	case "public":
		plan.Publish = true
	default:
		return nil, httputil.BadJSON(`"visibility" must be "public" or "private"`)
	}
	presetName := req.Preset
	if presetName == "" {
		presetName = presetPrivateChat
		if plan.Publish {
			presetName = presetPublicChat
		}
	}
	preset, ok := presets[presetName]
	if !ok {
		return nil, httputil.BadJSON(fmt.Sprintf("%q is not a valid preset", presetName))
	}

	// Invitees.
	var invitees []string
	for _, u := range req.Invite {
		if err := checkUserID(u); err != nil {
			return nil, err
		}
		if u == creator {
			return nil, httputil.InvalidParam("you cannot invite yourself to the room you create")
		}
		if !slices.Contains(invitees, u) {
			invitees = append(invitees, u)
		}
	}
	if len(req.Invite3PID) > 0 {
		// Third-party invites need an identity server, which this server
		// does not talk to; refusing is better than silently dropping them.
		return nil, httputil.NewError(400, httputil.CodeUnrecognized, "invite_3pid is not supported by this server")
	}

	// creation_content, with the creators of a version 12 room.
	creation, err := rawObject(req.CreationContent, "creation_content")
	if err != nil {
		return nil, err
	}
	if ver.PrivilegedCreators && preset.InviteesAreAdmins && len(invitees) > 0 {
		// create_room.yaml: trusted_private_chat invitees join
		// additional_creators, since version 12 creators cannot be given
		// power in m.room.power_levels.
		var extra []json.RawMessage
		if raw, ok := creation["additional_creators"]; ok {
			if err := json.Unmarshal(raw, &extra); err != nil {
				return nil, httputil.BadJSON(`"creation_content.additional_creators" must be an array`)
			}
		}
		for _, u := range invitees {
			q, _ := json.Marshal(u)
			if !slices.ContainsFunc(extra, func(e json.RawMessage) bool { return string(e) == string(q) }) {
				extra = append(extra, q)
			}
		}
		creation["additional_creators"], _ = json.Marshal(extra)
	}
	plan.CreationContent, _ = json.Marshal(creation)

	// initial_state: last entry per (type, state_key) wins, in the order
	// each key first appears.
	type stateKey struct{ typ, key string }
	var initial []plannedEvent
	index := map[stateKey]int{}
	for i, ev := range req.InitialState {
		if ev.Type == nil || *ev.Type == "" {
			return nil, httputil.BadJSON(fmt.Sprintf(`"initial_state[%d].type" must be a non-empty string`, i))
		}
		if len(*ev.Type) > pdu.MaxIDSize {
			return nil, httputil.BadJSON(fmt.Sprintf(`"initial_state[%d].type" is longer than %d bytes`, i, pdu.MaxIDSize))
		}
		sk := ""
		if ev.StateKey != nil {
			sk = *ev.StateKey
		}
		if len(sk) > pdu.MaxIDSize {
			return nil, httputil.BadJSON(fmt.Sprintf(`"initial_state[%d].state_key" is longer than %d bytes`, i, pdu.MaxIDSize))
		}
		if len(ev.Content) == 0 || string(ev.Content) == "null" {
			return nil, httputil.BadJSON(fmt.Sprintf(`"initial_state[%d].content" is required`, i))
		}
		if _, err := rawObject(ev.Content, fmt.Sprintf("initial_state[%d].content", i)); err != nil {
			return nil, err
		}
		pe := plannedEvent{Type: *ev.Type, StateKey: sk, Content: ev.Content}
		k := stateKey{pe.Type, pe.StateKey}
		if j, ok := index[k]; ok {
			initial[j] = pe
			continue
		}
		index[k] = len(initial)
		initial = append(initial, pe)
	}
	inInitial := func(typ string) (plannedEvent, bool) {
		j, ok := index[stateKey{typ, ""}]
		if !ok {
			return plannedEvent{}, false
		}
		return initial[j], true
	}

	// Alias.
	if req.RoomAliasName != nil {
		local := *req.RoomAliasName
		if strings.Contains(local, ":") {
			return nil, httputil.InvalidParam(`':' is not permitted in "room_alias_name": it is the local part only, e.g. "wombat", not "#wombat:example.com"`)
		}
		if err := checkAliasLocalpart(local); err != nil {
			return nil, err
		}
		plan.Alias = "#" + local + ":" + serverName
		if _, _, err := parseAlias(plan.Alias); err != nil {
			return nil, err
		}
	}

	override, err := rawObject(req.PowerLevelContentOverride, "power_level_content_override")
	if err != nil {
		return nil, err
	}
	for _, s := range []struct {
		field string
		value *string
	}{{"name", req.Name}, {"topic", req.Topic}} {
		if s.value != nil && strings.IndexByte(*s.value, 0) >= 0 {
			return nil, httputil.BadJSON(fmt.Sprintf("%q must not contain NUL", s.field))
		}
	}

	add := func(typ, key string, content any) {
		raw, ok := content.(json.RawMessage)
		if !ok {
			raw, _ = json.Marshal(content)
		}
		plan.Events = append(plan.Events, plannedEvent{Type: typ, StateKey: key, Content: raw})
	}

	// 2. The creator's join.
	add("m.room.member", creator, memberContent("join", profile(creator), false))

	// 3. Power levels: initial_state's, or the default; then the override.
	var levels map[string]json.RawMessage
	if pl, ok := inInitial("m.room.power_levels"); ok {
		levels, _ = rawObject(pl.Content, "initial_state power levels")
	} else {
		levels = defaultPowerLevels(ver, creator, preset, invitees)
	}
	for k, v := range override {
		levels[k] = v
	}
	add("m.room.power_levels", "", levels)

	// 4. Canonical alias.
	if plan.Alias != "" {
		add("m.room.canonical_alias", "", map[string]any{"alias": plan.Alias})
	}

	// 5. The preset's events, unless initial_state sets them.
	for _, e := range []struct {
		typ, key, value string
	}{
		{"m.room.join_rules", "join_rule", preset.JoinRule},
		{"m.room.history_visibility", "history_visibility", preset.HistoryVisibility},
		{"m.room.guest_access", "guest_access", preset.GuestAccess},
	} {
		if _, ok := inInitial(e.typ); !ok {
			add(e.typ, "", map[string]string{e.key: e.value})
		}
	}

	// 6. initial_state, except what steps 3 and 7 send instead.
	for _, ev := range initial {
		switch {
		case ev.StateKey == "" && ev.Type == "m.room.power_levels",
			ev.StateKey == "" && ev.Type == "m.room.name" && req.Name != nil,
			ev.StateKey == "" && ev.Type == "m.room.topic" && req.Topic != nil:
			continue
		}
		plan.Events = append(plan.Events, ev)
	}

	// 7. Name and topic.
	if req.Name != nil {
		add("m.room.name", "", map[string]string{"name": *req.Name})
	}
	if req.Topic != nil {
		add("m.room.topic", "", topicContent(*req.Topic))
	}

	// 8. Invites.
	for _, u := range invitees {
		add("m.room.member", u, memberContent("invite", profile(u), req.IsDirect))
	}
	return plan, nil
}

// defaultPowerLevels is the m.room.power_levels content of a new room, as
// Synapse makes it (clients rely on these values): the creator at 100 in
// versions 1–11 (version 12 creators have infinite power and must not be
// listed), moderators at 50 for most state, admins for the events that
// change who controls the room.
func defaultPowerLevels(ver *pdu.RoomVersion, creator string, preset presetState, invitees []string) map[string]json.RawMessage {
	users := map[string]int64{}
	if !ver.PrivilegedCreators {
		users[creator] = 100
		if preset.InviteesAreAdmins {
			for _, u := range invitees {
				users[u] = 100
			}
		}
	}
	// create_room.yaml: in version 12 the level to send m.room.tombstone
	// must be above state_default... and above the admins' 100, so that
	// only creators can upgrade.
	tombstone := int64(100)
	if ver.PrivilegedCreators {
		tombstone = 150
	}
	content := map[string]any{
		"users":         users,
		"users_default": 0,
		"events": map[string]int64{
			"m.room.name":               50,
			"m.room.power_levels":       100,
			"m.room.history_visibility": 100,
			"m.room.canonical_alias":    50,
			"m.room.avatar":             50,
			"m.room.tombstone":          tombstone,
			"m.room.server_acl":         100,
			"m.room.encryption":         100,
		},
		"events_default": 0,
		"state_default":  50,
		"ban":            50,
		"kick":           50,
		"redact":         50,
		"invite":         preset.InviteLevel,
		"historical":     100,
	}
	m := make(map[string]json.RawMessage, len(content))
	for k, v := range content {
		m[k], _ = json.Marshal(v)
	}
	return m
}

// memberContent is the content of a member event made by the server.
func memberContent(membership string, p memberProfile, isDirect bool) map[string]any {
	c := map[string]any{"membership": membership}
	if p.DisplayName != "" {
		c["displayname"] = p.DisplayName
	}
	if p.AvatarURL != "" {
		c["avatar_url"] = p.AvatarURL
	}
	if isDirect {
		c["is_direct"] = true
	}
	return c
}

// topicContent is an m.room.topic content with the plain text topic both
// in "topic" and in the m.topic block (spec v1.15), as the event schema asks.
func topicContent(topic string) map[string]any {
	return map[string]any{
		"topic":   topic,
		"m.topic": map[string]any{"m.text": []map[string]string{{"mimetype": "text/plain", "body": topic}}},
	}
}

// checkAliasLocalpart applies the rules for a new alias's localpart beyond
// the grammar (which only excludes ':' and NUL): no whitespace, as Synapse
// refuses it, since such aliases cannot be typed or linked.
func checkAliasLocalpart(local string) error {
	if local == "" {
		return httputil.InvalidParam("the room alias localpart is empty")
	}
	if strings.ContainsFunc(local, unicode.IsSpace) || strings.IndexByte(local, 0) >= 0 {
		return httputil.InvalidParam("invalid characters in room alias " + quoteID(local))
	}
	return nil
}

// rawObject decodes raw as a JSON object into its members; absent (nil or
// null) is an empty object. Anything else is 400 M_BAD_JSON naming field.
func rawObject(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(raw) == 0 || string(raw) == "null" {
		return m, nil
	}
	if raw[0] != '{' {
		return nil, httputil.BadJSON(fmt.Sprintf("%q must be a JSON object", field))
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, httputil.BadJSON(fmt.Sprintf("%q must be a JSON object", field))
	}
	return m, nil
}
