package syncapi

// The shape of a /sync response (sync.yaml). Slices that the spec lists as
// arrays are never nil, so they encode as [] rather than null.

import "encoding/json"

type syncResponse struct {
	NextBatch   string      `json:"next_batch"`
	AccountData *eventBatch `json:"account_data,omitempty"`
	Presence    *eventBatch `json:"presence,omitempty"`
	Rooms       *syncRooms  `json:"rooms,omitempty"`
	pos         int64       // the stream position the response covers
	empty       bool        // nothing to tell the client

	e2eeSections // to_device, device_lists and key counts (e2ee.go)
}

type eventBatch struct {
	Events []json.RawMessage `json:"events"`
}

func newBatch() eventBatch { return eventBatch{Events: []json.RawMessage{}} }

type syncRooms struct {
	Join   map[string]*joinedRoom  `json:"join,omitempty"`
	Invite map[string]*invitedRoom `json:"invite,omitempty"`
	Leave  map[string]*leftRoom    `json:"leave,omitempty"`
	Knock  map[string]*knockedRoom `json:"knock,omitempty"`
}

type timelineBatch struct {
	Events    []json.RawMessage `json:"events"`
	Limited   bool              `json:"limited"`
	PrevBatch string            `json:"prev_batch,omitempty"`
}

type roomSummary struct {
	Heroes             []string `json:"m.heroes,omitempty"`
	JoinedMemberCount  *int     `json:"m.joined_member_count,omitempty"`
	InvitedMemberCount *int     `json:"m.invited_member_count,omitempty"`
}

type unreadCounts struct {
	HighlightCount    int `json:"highlight_count"`
	NotificationCount int `json:"notification_count"`
}

type joinedRoom struct {
	Summary             *roomSummary  `json:"summary,omitempty"`
	State               *eventBatch   `json:"state,omitempty"`
	StateAfter          *eventBatch   `json:"state_after,omitempty"`
	Timeline            timelineBatch `json:"timeline"`
	Ephemeral           eventBatch    `json:"ephemeral"`
	AccountData         eventBatch    `json:"account_data"`
	UnreadNotifications unreadCounts  `json:"unread_notifications"`
	// UnreadThreadNotifications: thread root → counts, when the filter
	// asks for them.
	UnreadThreadNotifications map[string]unreadCounts `json:"unread_thread_notifications,omitempty"`
}

type leftRoom struct {
	State       *eventBatch   `json:"state,omitempty"`
	StateAfter  *eventBatch   `json:"state_after,omitempty"`
	Timeline    timelineBatch `json:"timeline"`
	AccountData eventBatch    `json:"account_data"`
}

type invitedRoom struct {
	InviteState eventBatch `json:"invite_state"`
}

type knockedRoom struct {
	KnockState eventBatch `json:"knock_state"`
}
