package syncapi

// Filters (client-server-api "Filtering", definitions/sync_filter.yaml,
// room_event_filter.yaml and event_filter.yaml): parsing with the precise
// errors clients get for a bad filter, and matching events against them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// Timeline limits: the default when a filter gives none (Synapse's), and
// the most a filter may ask for (Synapse's filter_timeline_limit), which
// bounds the work of one /sync.
const (
	defaultTimelineLimit = 10
	maxTimelineLimit     = 100
)

// Filter is a sync filter (the Filter object).
type Filter struct {
	EventFields []string    `json:"event_fields,omitempty"`
	EventFormat string      `json:"event_format,omitempty"`
	Presence    EventFilter `json:"presence"`
	AccountData EventFilter `json:"account_data"`
	Room        RoomFilter  `json:"room"`
}

// EventFilter filters non-room events (presence, account data). A nil list
// is an absent one (no restriction); an empty list matches nothing, as in
// Synapse.
type EventFilter struct {
	Limit      *int      `json:"limit,omitempty"`
	NotSenders *[]string `json:"not_senders,omitempty"`
	NotTypes   *[]string `json:"not_types,omitempty"`
	Senders    *[]string `json:"senders,omitempty"`
	Types      *[]string `json:"types,omitempty"`
}

// RoomEventFilter filters room events (timeline, state, ephemeral, room
// account data; /messages and /context).
type RoomEventFilter struct {
	EventFilter
	UnreadThreadNotifications bool      `json:"unread_thread_notifications,omitempty"`
	LazyLoadMembers           bool      `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers   bool      `json:"include_redundant_members,omitempty"`
	NotRooms                  *[]string `json:"not_rooms,omitempty"`
	Rooms                     *[]string `json:"rooms,omitempty"`
	ContainsURL               *bool     `json:"contains_url,omitempty"`
}

// RoomFilter is the room part of a Filter.
type RoomFilter struct {
	NotRooms     *[]string       `json:"not_rooms,omitempty"`
	Rooms        *[]string       `json:"rooms,omitempty"`
	Ephemeral    RoomEventFilter `json:"ephemeral"`
	IncludeLeave bool            `json:"include_leave,omitempty"`
	State        RoomEventFilter `json:"state"`
	Timeline     RoomEventFilter `json:"timeline"`
	AccountData  RoomEventFilter `json:"account_data"`
}

// ParseFilter parses and validates a Filter. Errors are 400 M_NOT_JSON for
// text that is not JSON and M_BAD_JSON for a filter of the wrong shape,
// what Synapse answers.
func ParseFilter(data []byte) (*Filter, error) {
	var f Filter
	if err := decodeFilter(data, &f); err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseRoomEventFilter parses and validates a RoomEventFilter (the filter
// parameter of /messages and /context), with ParseFilter's errors.
func ParseRoomEventFilter(data []byte) (*RoomEventFilter, error) {
	var f RoomEventFilter
	if err := decodeFilter(data, &f); err != nil {
		return nil, err
	}
	if err := f.validate("filter"); err != nil {
		return nil, err
	}
	return &f, nil
}

func decodeFilter(data []byte, dst any) error {
	trimmed := bytes.TrimSpace(data)
	if !json.Valid(trimmed) {
		return httputil.NotJSON("the filter is not valid JSON")
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return httputil.BadJSON("the filter must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return httputil.BadJSON(fmt.Sprintf("filter field %q has the wrong type (%s)", te.Field, te.Value))
		}
		return httputil.BadJSON("invalid filter: " + err.Error())
	}
	return nil
}

func (f *Filter) validate() error {
	switch f.EventFormat {
	case "", "client", "federation":
	default:
		return httputil.BadJSON(fmt.Sprintf("event_format must be \"client\" or \"federation\", not %q", f.EventFormat))
	}
	for _, p := range f.EventFields {
		if p == "" {
			return httputil.BadJSON("event_fields must not contain an empty path")
		}
	}
	if err := f.Presence.validate("presence"); err != nil {
		return err
	}
	if err := f.AccountData.validate("account_data"); err != nil {
		return err
	}
	if err := checkIDs("room.rooms", f.Room.Rooms, '!'); err != nil {
		return err
	}
	if err := checkIDs("room.not_rooms", f.Room.NotRooms, '!'); err != nil {
		return err
	}
	for name, rf := range map[string]*RoomEventFilter{
		"room.ephemeral": &f.Room.Ephemeral, "room.state": &f.Room.State,
		"room.timeline": &f.Room.Timeline, "room.account_data": &f.Room.AccountData,
	} {
		if err := rf.validate(name); err != nil {
			return err
		}
	}
	return nil
}

func (f *EventFilter) validate(name string) error {
	if f.Limit != nil && *f.Limit < 0 {
		return httputil.BadJSON(name + ".limit must not be negative")
	}
	if err := checkIDs(name+".senders", f.Senders, '@'); err != nil {
		return err
	}
	return checkIDs(name+".not_senders", f.NotSenders, '@')
}

func (f *RoomEventFilter) validate(name string) error {
	if err := f.EventFilter.validate(name); err != nil {
		return err
	}
	if err := checkIDs(name+".rooms", f.Rooms, '!'); err != nil {
		return err
	}
	return checkIDs(name+".not_rooms", f.NotRooms, '!')
}

// checkIDs checks that every entry of a list of room or user IDs starts
// with its sigil, as the schema's patterns require.
func checkIDs(name string, ids *[]string, sigil byte) error {
	if ids == nil {
		return nil
	}
	for _, id := range *ids {
		if len(id) < 2 || id[0] != sigil {
			return httputil.BadJSON(fmt.Sprintf("%s: %q is not a valid %s ID", name, id, map[byte]string{'!': "room", '@': "user"}[sigil]))
		}
	}
	return nil
}

// timelineLimit is the filter's limit, defaulted and capped.
func (f *RoomEventFilter) timelineLimit(def int) int {
	if f.Limit == nil {
		return def
	}
	return min(*f.Limit, maxTimelineLimit)
}

// allowsRoom applies rooms and not_rooms.
func allowsRoom(rooms, notRooms *[]string, roomID string) bool {
	if notRooms != nil && contains(*notRooms, roomID) {
		return false
	}
	return rooms == nil || contains(*rooms, roomID)
}

// allowsRoom applies the room filter's top-level rooms and not_rooms.
func (f *RoomFilter) allowsRoom(roomID string) bool {
	return allowsRoom(f.Rooms, f.NotRooms, roomID)
}

// matches applies types, not_types, senders and not_senders. sender may be
// "" for events without one (account data), which then only not_senders
// and senders lists cannot exclude.
func (f *EventFilter) matches(evType, sender string) bool {
	if f.NotTypes != nil && matchesAnyType(*f.NotTypes, evType) {
		return false
	}
	if f.Types != nil && !matchesAnyType(*f.Types, evType) {
		return false
	}
	if sender != "" {
		if f.NotSenders != nil && contains(*f.NotSenders, sender) {
			return false
		}
		if f.Senders != nil && !contains(*f.Senders, sender) {
			return false
		}
	}
	return true
}

// matchesEvent applies a RoomEventFilter to a room event; content is the
// event's content, read only when contains_url is set.
func (f *RoomEventFilter) matchesEvent(roomID, evType, sender string, content func() []byte) bool {
	if !allowsRoom(f.Rooms, f.NotRooms, roomID) || !f.matches(evType, sender) {
		return false
	}
	if f.ContainsURL != nil {
		hasURL := gjson.GetBytes(content(), "url").Type == gjson.String
		if hasURL != *f.ContainsURL {
			return false
		}
	}
	return true
}

// filtersNothing reports whether the filter lets every event through, so
// callers can skip reading content for it.
func (f *RoomEventFilter) filtersNothing() bool {
	return f.Types == nil && f.NotTypes == nil && f.Senders == nil && f.NotSenders == nil &&
		f.Rooms == nil && f.NotRooms == nil && f.ContainsURL == nil
}

func matchesAnyType(patterns []string, evType string) bool {
	for _, p := range patterns {
		if globMatch(p, evType) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern, where '*' stands for any sequence of
// characters (the filter's only wildcard).
func globMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, last)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
