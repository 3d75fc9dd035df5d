package clientapi

// The published room directory (client-server-api "Published room
// directory", list_public_rooms.yaml): GET and POST /publicRooms, and GET and
// PUT /directory/list/room/{roomId}.
//
// The directory holds only which rooms are published; what it shows of
// each (name, topic, member count, ...) is read from the room's current
// state at each listing, so it is never stale.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerDirectory(r *mux.Router) {
	// Listing needs no access token, as in Synapse by default; the
	// filtered POST form does (list_public_rooms.yaml).
	r.HandleFunc(v3Prefix+"publicRooms", a.getPublicRooms).Methods(http.MethodGet)
	r.HandleFunc(v3Prefix+"publicRooms", a.auth.Required(a.postPublicRooms)).Methods(http.MethodPost)
	const p = v3Prefix + "directory/list/room/{roomId}"
	r.HandleFunc(p, a.getRoomVisibility).Methods(http.MethodGet)
	r.HandleFunc(p, a.auth.Required(a.putRoomVisibility)).Methods(http.MethodPut)
}

// publicRoomsQuery is what a listing asks for.
type publicRoomsQuery struct {
	Limit  int
	Since  string
	Server string
	Filter struct {
		GenericSearchTerm string `json:"generic_search_term"`
		// RoomTypes: nil = every room; a JSON null in the list stands for
		// rooms without a type.
		RoomTypes []*string `json:"room_types"`
	}
}

// publicRoom is definitions/public_rooms_chunk.yaml.
type publicRoom struct {
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

type publicRoomsResponse struct {
	Chunk                  []publicRoom `json:"chunk"`
	NextBatch              string       `json:"next_batch,omitempty"`
	PrevBatch              string       `json:"prev_batch,omitempty"`
	TotalRoomCountEstimate int          `json:"total_room_count_estimate"`
}

// getPublicRooms implements GET /publicRooms.
func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) {
	var q publicRoomsQuery
	v := r.URL.Query()
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam(`"limit" must be a non-negative integer`))
			return
		}
		q.Limit = n
	}
	q.Since, q.Server = v.Get("since"), v.Get("server")
	a.listPublicRooms(w, r, &q)
}

// postPublicRooms implements POST /publicRooms.
func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	var body struct {
		Limit                *int            `json:"limit"`
		Since                string          `json:"since"`
		Filter               json.RawMessage `json:"filter"`
		IncludeAllNetworks   bool            `json:"include_all_networks"`
		ThirdPartyInstanceID string          `json:"third_party_instance_id"`
	}
	if _, err := readObjectInto(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var q publicRoomsQuery
	if body.Limit != nil {
		if *body.Limit < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam(`"limit" must not be negative`))
			return
		}
		q.Limit = *body.Limit
	}
	if len(body.Filter) > 0 && string(body.Filter) != "null" {
		if _, err := rawObject(body.Filter, "filter"); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if err := json.Unmarshal(body.Filter, &q.Filter); err != nil {
			httputil.WriteError(w, r, badJSONError(err))
			return
		}
	}
	if body.IncludeAllNetworks && body.ThirdPartyInstanceID != "" {
		httputil.WriteError(w, r, httputil.InvalidParam("third_party_instance_id cannot be used with include_all_networks"))
		return
	}
	// This server has no application service networks: every network is
	// the Matrix one, and a third-party instance has no rooms.
	q.Since, q.Server = body.Since, r.URL.Query().Get("server")
	if body.ThirdPartyInstanceID != "" {
		httputil.WriteJSON(w, r, http.StatusOK, publicRoomsResponse{Chunk: []publicRoom{}})
		return
	}
	a.listPublicRooms(w, r, &q)
}

// listPublicRooms answers a listing: rooms ordered by joined members, most
// first, then by room ID, filtered, one page of them.
func (a *API) listPublicRooms(w http.ResponseWriter, r *http.Request, q *publicRoomsQuery) {
	if q.Server != "" && q.Server != a.cfg.ServerName {
		httputil.WriteError(w, r, httputil.NotFound("the room directory of "+q.Server+" cannot be fetched: this server cannot query other servers yet"))
		return
	}
	var since *dirToken
	if q.Since != "" {
		t, err := parseDirToken(q.Since)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		since = t
	}
	ctx := r.Context()
	ids, err := a.db.PublishedRooms(ctx)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	rooms := make([]publicRoom, 0, len(ids))
	for _, id := range ids {
		pr, err := a.publicRoomOf(ctx, id)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if pr != nil && q.matches(pr) {
			rooms = append(rooms, *pr)
		}
	}
	slices.SortFunc(rooms, func(x, y publicRoom) int { return dirKey(x).compare(dirKey(y)) })

	// The page: the rooms after (forwards) or before (backwards) the
	// token's room, whose key is the room it was made at.
	start, end := 0, len(rooms)
	if since != nil {
		cut, _ := slices.BinarySearchFunc(rooms, since.key, func(p publicRoom, k dirTokenKey) int { return dirKey(p).compare(k) })
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
	resp := publicRoomsResponse{Chunk: rooms[start:end], TotalRoomCountEstimate: len(rooms)}
	if end < len(rooms) && end > start {
		resp.NextBatch = dirToken{Forward: true, key: dirKey(rooms[end-1])}.String()
	}
	if start > 0 && end > start {
		resp.PrevBatch = dirToken{Forward: false, key: dirKey(rooms[start])}.String()
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// matches applies the filter: generic_search_term is a case-insensitive
// substring of the name, topic or canonical alias (as in Synapse), and
// room_types lists the room types wanted.
func (q *publicRoomsQuery) matches(pr *publicRoom) bool {
	if term := strings.ToLower(strings.TrimSpace(q.Filter.GenericSearchTerm)); term != "" {
		if !strings.Contains(strings.ToLower(pr.Name), term) &&
			!strings.Contains(strings.ToLower(pr.Topic), term) &&
			!strings.Contains(strings.ToLower(pr.CanonicalAlias), term) {
			return false
		}
	}
	if q.Filter.RoomTypes != nil {
		return slices.ContainsFunc(q.Filter.RoomTypes, func(t *string) bool {
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
func (a *API) publicRoomOf(ctx context.Context, roomID string) (*publicRoom, error) {
	room, err := a.db.Room(ctx, roomID)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	state, err := a.db.CurrentStateEvents(ctx, room.NID, publicRoomKeys)
	if err != nil {
		return nil, err
	}
	joined, _, err := a.db.MemberCounts(ctx, room.NID)
	if err != nil {
		return nil, err
	}
	pr := &publicRoom{RoomID: roomID, NumJoinedMembers: joined}
	for _, ev := range state {
		switch ev.Type {
		case "m.room.create":
			pr.RoomType = contentString(ev.JSON, "type")
		case "m.room.name":
			pr.Name = contentString(ev.JSON, "name")
		case "m.room.topic":
			pr.Topic = plainTopic(ev.JSON)
		case "m.room.canonical_alias":
			pr.CanonicalAlias = contentString(ev.JSON, "alias")
		case "m.room.avatar":
			pr.AvatarURL = contentString(ev.JSON, "url")
		case "m.room.join_rules":
			pr.JoinRule = contentString(ev.JSON, "join_rule")
		case "m.room.history_visibility":
			pr.WorldReadable = contentString(ev.JSON, "history_visibility") == "world_readable"
		case "m.room.guest_access":
			pr.GuestCanJoin = contentString(ev.JSON, "guest_access") == "can_join"
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
	return contentString(eventJSON, "topic")
}

// dirTokenKey is a room's place in the listing order.
type dirTokenKey struct {
	Members int    `json:"m"`
	RoomID  string `json:"r"`
}

func dirKey(p publicRoom) dirTokenKey {
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
		return nil, httputil.InvalidParam("invalid since token " + quoteID(s))
	}
	return &dirToken{Forward: *v.F, key: v.dirTokenKey}, nil
}

// getRoomVisibility implements GET /directory/list/room/{roomId}.
func (a *API) getRoomVisibility(w http.ResponseWriter, r *http.Request) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.checkRoomExists(r.Context(), roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	published, err := a.db.IsRoomPublished(r.Context(), roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	vis := "private"
	if published {
		vis = "public"
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"visibility": vis})
}

// putRoomVisibility implements PUT /directory/list/room/{roomId}: as in
// Synapse, server admins and members with the power to send
// m.room.canonical_alias may publish or unpublish the room.
func (a *API) putRoomVisibility(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var body struct {
		Visibility *string `json:"visibility"`
	}
	if err := httputil.ReadJSON(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	vis := "public"
	if body.Visibility != nil {
		vis = *body.Visibility
	}
	if vis != "public" && vis != "private" {
		httputil.WriteError(w, r, httputil.InvalidParam(`"visibility" must be "public" or "private"`))
		return
	}
	ctx := r.Context()
	if err := a.checkRoomExists(ctx, roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !d.IsAdmin {
		ok, err := a.canSendState(ctx, roomID, d.UserID, "m.room.canonical_alias")
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if !ok {
			httputil.WriteError(w, r, httputil.Forbidden("you are not permitted to edit the published room list for this room"))
			return
		}
	}
	if err := a.db.SetRoomPublished(ctx, roomID, vis == "public"); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}
