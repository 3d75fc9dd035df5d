package roomserver

// The listing of this server's published room directory, which the client
// API (GET and POST /_matrix/client/v3/publicRooms) and the federation API
// (GET and POST /_matrix/federation/v1/publicRooms) both serve, so that
// the two show the same rooms in the same order with the same pagination
// tokens.
//
// The directory (storage's room_directory) holds only which rooms are
// published; what a listing shows of each (name, topic, member count, ...)
// is read from the room's current state at each listing, so it is never
// stale.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// ErrInvalidSince is returned (wrapped) by PublicRooms for a since token
// it did not make; the APIs answer 400 M_INVALID_PARAM.
var ErrInvalidSince = errors.New("invalid since token")

// PublicRoomsQuery is what a listing asks for (list_public_rooms.yaml,
// server-server public_rooms.yaml).
type PublicRoomsQuery struct {
	// Limit is the most rooms on the page; 0 means no limit.
	Limit int
	// Since is a NextBatch or PrevBatch of an earlier page; "" for the
	// first page.
	Since  string
	Filter PublicRoomsFilter
	// IncludeAllNetworks and ThirdPartyInstanceID choose application
	// service networks. This server has none: every room is on the Matrix
	// network, and a third-party instance has no rooms.
	IncludeAllNetworks   bool
	ThirdPartyInstanceID string
}

// PublicRoomsFilter is the "filter" of POST /publicRooms.
type PublicRoomsFilter struct {
	GenericSearchTerm string `json:"generic_search_term,omitempty"`
	// RoomTypes: nil = every room; a JSON null in the list stands for
	// rooms without a type.
	RoomTypes []*string `json:"room_types,omitempty"`
}

// PublicRoom is one entry of a listing (definitions/public_rooms_chunk.yaml).
type PublicRoom struct {
	CanonicalAlias   string `json:"canonical_alias,omitempty"`
	Name             string `json:"name,omitempty"`
	NumJoinedMembers int    `json:"num_joined_members"`
	RoomID           string `json:"room_id"`
	Topic            string `json:"topic,omitempty"`
	WorldReadable    bool   `json:"world_readable"`
	GuestCanJoin     bool   `json:"guest_can_join"`
	AvatarURL        string `json:"avatar_url,omitempty"`
	JoinRule         string `json:"join_rule,omitempty"`
	RoomType         string `json:"room_type,omitempty"`
}

// PublicRoomsPage is one page of a listing
// (definitions/public_rooms_response.yaml).
type PublicRoomsPage struct {
	Chunk                  []PublicRoom `json:"chunk"`
	NextBatch              string       `json:"next_batch,omitempty"`
	PrevBatch              string       `json:"prev_batch,omitempty"`
	TotalRoomCountEstimate int          `json:"total_room_count_estimate"`
}

// PublicRooms lists one page of the published room directory: the rooms
// that match q's filter, ordered by joined members, most first, then by
// room ID. A since token that is not one of ours is ErrInvalidSince.
func (rs *Roomserver) PublicRooms(ctx context.Context, q PublicRoomsQuery) (*PublicRoomsPage, error) {
	if q.ThirdPartyInstanceID != "" && !q.IncludeAllNetworks {
		return &PublicRoomsPage{Chunk: []PublicRoom{}}, nil
	}
	var since *dirToken
	if q.Since != "" {
		t, err := parseDirToken(q.Since)
		if err != nil {
			return nil, err
		}
		since = t
	}
	ids, err := rs.db.PublishedRooms(ctx)
	if err != nil {
		return nil, err
	}
	rooms := make([]PublicRoom, 0, len(ids))
	for _, id := range ids {
		pr, err := rs.publicRoomOf(ctx, id)
		if err != nil {
			return nil, err
		}
		if pr != nil && q.Filter.Matches(pr) {
			rooms = append(rooms, *pr)
		}
	}
	slices.SortFunc(rooms, func(x, y PublicRoom) int { return dirKey(x).compare(dirKey(y)) })

	// The page: the rooms after (forwards) or before (backwards) the
	// token's room, whose key is the room it was made at.
	start, end := 0, len(rooms)
	if since != nil {
		cut, _ := slices.BinarySearchFunc(rooms, since.key, func(p PublicRoom, k dirTokenKey) int { return dirKey(p).compare(k) })
		if since.Forward {
			start = cut
			if start < len(rooms) && dirKey(rooms[start]) == since.key {
				start++
			}
		} else {
			end = cut
		}
	}
	if q.Limit > 0 && end-start > q.Limit {
		if since != nil && !since.Forward {
			start = end - q.Limit
		} else {
			end = start + q.Limit
		}
	}
	page := &PublicRoomsPage{Chunk: rooms[start:end], TotalRoomCountEstimate: len(rooms)}
	if end < len(rooms) && end > start {
		page.NextBatch = dirToken{Forward: true, key: dirKey(rooms[end-1])}.String()
	}
	if start > 0 && end > start {
		page.PrevBatch = dirToken{Forward: false, key: dirKey(rooms[start])}.String()
	}
	return page, nil
}

// Matches applies the filter: generic_search_term is a case-insensitive
// substring of the name, topic or canonical alias (as in Synapse), and
// room_types lists the room types wanted.
func (f *PublicRoomsFilter) Matches(pr *PublicRoom) bool {
	if term := strings.ToLower(strings.TrimSpace(f.GenericSearchTerm)); term != "" {
		if !strings.Contains(strings.ToLower(pr.Name), term) &&
			!strings.Contains(strings.ToLower(pr.Topic), term) &&
			!strings.Contains(strings.ToLower(pr.CanonicalAlias), term) {
			return false
		}
	}
	if f.RoomTypes != nil {
		return slices.ContainsFunc(f.RoomTypes, func(t *string) bool {
			if t == nil {
				return pr.RoomType == ""
			}
			return *t == pr.RoomType
		})
	}
	return true
}

// publicRoomKeys are the state events a directory entry is made from.
var publicRoomKeys = []storage.StateKey{
	{Type: "m.room.create"}, {Type: "m.room.name"}, {Type: "m.room.topic"},
	{Type: "m.room.canonical_alias"}, {Type: "m.room.avatar"}, {Type: "m.room.join_rules"},
	{Type: "m.room.history_visibility"}, {Type: "m.room.guest_access"},
}

// publicRoomOf reads a directory entry from the room's current state; nil
// for a room this server no longer has.
func (rs *Roomserver) publicRoomOf(ctx context.Context, roomID string) (*PublicRoom, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	state, err := rs.db.CurrentStateEvents(ctx, room.NID, publicRoomKeys)
	if err != nil {
		return nil, err
	}
	joined, _, err := rs.db.MemberCounts(ctx, room.NID)
	if err != nil {
		return nil, err
	}
	pr := &PublicRoom{RoomID: roomID, NumJoinedMembers: joined}
	for _, ev := range state {
		str := func(key string) string {
			v := gjson.GetBytes(ev.JSON, "content."+key)
			if v.Type != gjson.String {
				return ""
			}
			return v.Str
		}
		switch ev.Type {
		case "m.room.create":
			pr.RoomType = str("type")
		case "m.room.name":
			pr.Name = str("name")
		case "m.room.topic":
			pr.Topic = plainTopic(ev.JSON)
		case "m.room.canonical_alias":
			pr.CanonicalAlias = str("alias")
		case "m.room.avatar":
			pr.AvatarURL = str("url")
		case "m.room.join_rules":
			pr.JoinRule = str("join_rule")
		case "m.room.history_visibility":
			pr.WorldReadable = str("history_visibility") == "world_readable"
		case "m.room.guest_access":
			pr.GuestCanJoin = str("guest_access") == "can_join"
		}
	}
	return pr, nil
}

// plainTopic is the text/plain topic of an m.room.topic event: the
// text/plain entry of m.topic when there is one, else "topic"
// (public_rooms_chunk.yaml).
func plainTopic(eventJSON []byte) string {
	for _, t := range gjson.GetBytes(eventJSON, `content.m\.topic.m\.text`).Array() {
		if mt := t.Get("mimetype"); (!mt.Exists() || mt.Str == "text/plain") && t.Get("body").Type == gjson.String {
			return t.Get("body").Str
		}
	}
	if v := gjson.GetBytes(eventJSON, "content.topic"); v.Type == gjson.String {
		return v.Str
	}
	return ""
}

// dirTokenKey is a room's place in the listing order.
type dirTokenKey struct {
	Members int    `json:"m"`
	RoomID  string `json:"r"`
}

func dirKey(p PublicRoom) dirTokenKey {
	return dirTokenKey{Members: p.NumJoinedMembers, RoomID: p.RoomID}
}

// compare orders by members, most first, then by room ID.
func (k dirTokenKey) compare(o dirTokenKey) int {
	if k.Members != o.Members {
		if k.Members > o.Members {
			return -1
		}
		return 1
	}
	return strings.Compare(k.RoomID, o.RoomID)
}

// dirToken is a pagination token of the listing: a room's key and the
// direction. Paging by key rather than by offset means that rooms
// published or unpublished between two pages shift nothing.
type dirToken struct {
	Forward bool
	key     dirTokenKey
}

func (t dirToken) String() string {
	b, _ := json.Marshal(struct {
		F bool `json:"f"`
		dirTokenKey
	}{t.Forward, t.key})
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseDirToken(s string) (*dirToken, error) {
	var v struct {
		F *bool `json:"f"`
		dirTokenKey
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &v) != nil || v.F == nil || v.RoomID == "" {
		return nil, ErrInvalidSince
	}
	return &dirToken{Forward: *v.F, key: v.dirTokenKey}, nil
}
