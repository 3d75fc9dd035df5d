package syncapi

// POST /v3/search (client-server-api "Server Side Search", search.yaml):
// the room_events category over the index of syncapi/search.
//
// The rooms searched are those the user has a membership in (joined, left,
// banned, invited), less forgotten ones and as the filter says; in each,
// only the stream positions of events the user may see (history
// visibility as syncapi/relations.Ranges, which the index applies in the
// query), so results, count and pages are exact. Results are formatted as
// /messages' events, with their bundled aggregations; context, profiles,
// state, groups and highlights are added as asked.

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/relations"
	"github.com/myelin-chat/myelin/syncapi/search"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

const (
	defaultSearchLimit  = 10
	maxSearchLimit      = 100
	defaultContextLimit = 5
	maxContextLimit     = 50
	// searchFreshness is how long a search waits for the index to catch up
	// with what was sent just before it, when it is nearly there.
	searchFreshness = time.Second
)

type searchRequest struct {
	SearchCategories *struct {
		RoomEvents *roomEventsCriteria `json:"room_events"`
	} `json:"search_categories"`
}

type roomEventsCriteria struct {
	SearchTerm   *string         `json:"search_term"`
	Keys         []string        `json:"keys"`
	Filter       json.RawMessage `json:"filter"`
	OrderBy      string          `json:"order_by"`
	EventContext *struct {
		BeforeLimit    *int `json:"before_limit"`
		AfterLimit     *int `json:"after_limit"`
		IncludeProfile bool `json:"include_profile"`
	} `json:"event_context"`
	IncludeState bool `json:"include_state"`
	Groupings    *struct {
		GroupBy []struct {
			Key string `json:"key"`
		} `json:"group_by"`
	} `json:"groupings"`
}

type searchResponse struct {
	SearchCategories struct {
		RoomEvents *roomEventsResult `json:"room_events,omitempty"`
	} `json:"search_categories"`
}

type roomEventsResult struct {
	Count      uint64                             `json:"count"`
	Highlights []string                           `json:"highlights"`
	Results    []searchResult                     `json:"results"`
	State      map[string][]jsonRaw               `json:"state,omitempty"`
	Groups     map[string]map[string]*searchGroup `json:"groups,omitempty"`
	NextBatch  string                             `json:"next_batch,omitempty"`
}

type searchResult struct {
	Rank    float64        `json:"rank"`
	Result  jsonRaw        `json:"result"`
	Context *searchContext `json:"context,omitempty"`
}

type searchContext struct {
	Start        string                 `json:"start"`
	End          string                 `json:"end"`
	ProfileInfo  map[string]profileInfo `json:"profile_info,omitempty"`
	EventsBefore []jsonRaw              `json:"events_before"`
	EventsAfter  []jsonRaw              `json:"events_after"`
}

type profileInfo struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

type searchGroup struct {
	NextBatch string   `json:"next_batch,omitempty"`
	Order     int      `json:"order"`
	Results   []string `json:"results"`
}

// searchPlan is a validated room_events request.
type searchPlan struct {
	c            *roomEventsCriteria
	term         search.Parsed
	filter       *RoomEventFilter
	order        string
	limit        int
	before       int
	after        int
	groupBy      []string
	token        *searchToken
	withContext  bool
	withProfiles bool
}

func (a *API) postSearch(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req searchRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.SearchCategories == nil {
		httputil.WriteError(w, r, httputil.BadJSON("search_categories is required"))
		return
	}
	var resp searchResponse
	if c := req.SearchCategories.RoomEvents; c != nil {
		plan, err := planSearch(c, r.URL.Query().Get("next_batch"))
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if resp.SearchCategories.RoomEvents, err = a.searchRoomEvents(r.Context(), d, plan); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// planSearch validates the room_events criteria and the next_batch token.
func planSearch(c *roomEventsCriteria, nextBatch string) (*searchPlan, error) {
	if c.SearchTerm == nil {
		return nil, httputil.BadJSON("room_events.search_term is required")
	}
	p := &searchPlan{c: c, term: search.ParseTerm(*c.SearchTerm), filter: &RoomEventFilter{},
		order: c.OrderBy, before: defaultContextLimit, after: defaultContextLimit}
	for _, k := range c.Keys {
		if !search.ValidKey(k) {
			return nil, httputil.BadJSON("room_events.keys: " + k + " is not content.body, content.name or content.topic")
		}
	}
	switch p.order {
	case "":
		p.order = "rank"
	case "rank", "recent":
	default:
		return nil, httputil.BadJSON(`room_events.order_by must be "rank" or "recent"`)
	}
	if len(c.Filter) > 0 && string(c.Filter) != "null" {
		f, err := ParseRoomEventFilter(c.Filter)
		if err != nil {
			return nil, err
		}
		p.filter = f
	}
	p.limit = defaultSearchLimit
	if p.filter.Limit != nil {
		p.limit = min(*p.filter.Limit, maxSearchLimit)
	}
	if ec := c.EventContext; ec != nil {
		p.withContext, p.withProfiles = true, ec.IncludeProfile
		for _, l := range []struct {
			v   *int
			dst *int
		}{{ec.BeforeLimit, &p.before}, {ec.AfterLimit, &p.after}} {
			if l.v != nil {
				if *l.v < 0 {
					return nil, httputil.BadJSON("room_events.event_context limits must not be negative")
				}
				*l.dst = min(*l.v, maxContextLimit)
			}
		}
	}
	if g := c.Groupings; g != nil {
		for _, k := range g.GroupBy {
			if k.Key != "room_id" && k.Key != "sender" {
				return nil, httputil.BadJSON(`room_events.groupings: group by "room_id" or "sender"`)
			}
			if !slices.Contains(p.groupBy, k.Key) {
				p.groupBy = append(p.groupBy, k.Key)
			}
		}
	}
	if nextBatch != "" {
		t, err := parseSearchToken(nextBatch)
		if err != nil {
			return nil, err
		}
		if t.Order != p.order {
			return nil, httputil.InvalidParam("the next_batch token is of another order_by")
		}
		p.token = &t
	}
	return p, nil
}

// searchScope is a room searched and what the user may see of it.
type searchScope struct {
	m       storage.SyncMembership
	visible []storage.PosRange
}

func (a *API) searchRoomEvents(ctx context.Context, d *auth.Device, p *searchPlan) (*roomEventsResult, error) {
	upto, err := a.db.StreamPos(ctx)
	if err != nil {
		return nil, err
	}
	// Read what was sent just before the search, unless the index is far
	// behind (a rebuild), where searching what is indexed is better than
	// waiting.
	if upto-a.search.Pos() < search.NearlyCurrent {
		wctx, cancel := context.WithTimeout(ctx, searchFreshness)
		_ = a.search.WaitFor(wctx, upto)
		cancel()
	}
	scopes, err := a.searchScopes(ctx, d.UserID, p, upto)
	if err != nil {
		return nil, err
	}
	ignored, err := a.ignoredUsers(ctx, d.UserID)
	if err != nil {
		return nil, err
	}
	q := search.Query{Term: p.term, Keys: p.c.Keys, Recent: p.order == "recent", Limit: p.limit,
		NotSenders: keys(ignored), ContainsURL: p.filter.ContainsURL}
	for _, s := range scopes {
		q.Rooms = append(q.Rooms, search.Room{RoomID: s.m.RoomID, Visible: s.visible})
	}
	if f := p.filter; f.Senders != nil || f.NotSenders != nil {
		if f.Senders != nil {
			q.Senders = *f.Senders
		}
		if f.NotSenders != nil {
			q.NotSenders = append(q.NotSenders, *f.NotSenders...)
		}
	}
	if f := p.filter; f.Types != nil || f.NotTypes != nil {
		q.Types = []string{}
		for _, t := range search.IndexedTypes {
			if f.matches(t, "") {
				q.Types = append(q.Types, t)
			}
		}
	}
	if t := p.token; t != nil {
		q.After = &search.Cursor{Pos: t.Pos, Offset: t.Offset}
		if t.GroupKey == "sender" {
			if q.Senders != nil && !slices.Contains(q.Senders, t.GroupValue) {
				q.Senders = []string{}
			} else {
				q.Senders = []string{t.GroupValue}
			}
		}
	}
	res, err := a.search.Search(ctx, q)
	if err != nil {
		return nil, err
	}

	out := &roomEventsResult{Count: res.Total, Highlights: []string{}, Results: []searchResult{}}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.EventID
	}
	evs, err := a.db.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*storage.EventRecord, len(evs))
	for _, ev := range evs {
		byID[ev.EventID] = ev
	}
	scopeOf := make(map[int64]*searchScope, len(scopes))
	for i := range scopes {
		scopeOf[scopes[i].m.RoomNID] = &scopes[i]
	}
	var found []*storage.EventRecord
	var ranks []float64
	for _, h := range res.Hits {
		// The index is a step behind the database: an event redacted
		// since it was indexed is left out here.
		if ev := byID[h.EventID]; ev != nil && ev.RedactedBy == "" && scopeOf[ev.RoomNID] != nil {
			found = append(found, ev)
			ranks = append(ranks, h.Score)
		}
	}

	opts := newFormatOpts(nil, true)
	if opts.TxnIDs, err = a.db.TxnIDsOf(ctx, d.UserID, d.DeviceID, found); err != nil {
		return nil, err
	}
	breq := relations.Request{UserID: d.UserID, Ignored: ignored}
	for _, s := range scopes {
		var inRoom []*storage.EventRecord
		for _, ev := range found {
			if ev.RoomNID == s.m.RoomNID {
				inRoom = append(inRoom, ev)
			}
		}
		if len(inRoom) > 0 {
			breq.Rooms = append(breq.Rooms, relations.Scope{RoomNID: s.m.RoomNID, Events: inRoom, Visible: s.visible})
		}
	}
	if opts.Relations, err = relations.Load(ctx, a.db, breq); err != nil {
		return nil, err
	}

	var texts []string
	for i, ev := range found {
		sr := searchResult{Rank: ranks[i], Result: opts.Format(ev)}
		if p.withContext {
			if sr.Context, err = a.searchContext(ctx, d, p, ev, ignored, upto, &opts); err != nil {
				return nil, err
			}
		}
		out.Results = append(out.Results, sr)
		texts = append(texts, searchableText(ev))
	}
	out.Highlights = a.search.Highlights(p.term, texts)

	if res.More && len(found) > 0 {
		next := searchToken{Order: p.order}
		if p.order == "recent" {
			next.Pos = found[len(found)-1].StreamPos
		} else {
			next.Offset = len(res.Hits)
		}
		if t := p.token; t != nil {
			next.GroupKey, next.GroupValue = t.GroupKey, t.GroupValue
			if p.order == "rank" {
				next.Offset += t.Offset
			}
		}
		out.NextBatch = next.String()
	}
	if len(p.groupBy) > 0 {
		out.Groups = groupResults(p, found, res.More)
	}
	if p.c.IncludeState {
		if out.State, err = a.searchState(ctx, found, scopeOf, &opts); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// searchScopes returns the rooms to search with what the user may see of
// each, in one query for all of them.
func (a *API) searchScopes(ctx context.Context, userID string, p *searchPlan, upto int64) ([]searchScope, error) {
	memberships, err := a.db.SyncMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	forgotten, err := a.db.ForgottenRooms(ctx, userID)
	if err != nil {
		return nil, err
	}
	var rooms []storage.SyncMembership
	var nids []int64
	for _, m := range memberships {
		if slices.Contains(forgotten, m.RoomID) || !allowsRoom(p.filter.Rooms, p.filter.NotRooms, m.RoomID) {
			continue
		}
		if t := p.token; t != nil && t.GroupKey == "room_id" && t.GroupValue != m.RoomID {
			continue
		}
		rooms = append(rooms, m)
		nids = append(nids, m.RoomNID)
	}
	if len(rooms) == 0 {
		return nil, nil
	}
	vis, err := a.db.VisibilityEventsOfRooms(ctx, nids, userID, upto)
	if err != nil {
		return nil, err
	}
	out := make([]searchScope, 0, len(rooms))
	for _, m := range rooms {
		hv, mem := relations.ChangesOf(vis[m.RoomNID])
		visible := relations.Ranges(hv, mem, m.Membership == "join", upto)
		if len(visible) > 0 {
			out = append(out, searchScope{m: m, visible: visible})
		}
	}
	return out, nil
}

// searchContext returns the events around a result, as /context would,
// with the senders' profiles at the result when asked.
func (a *API) searchContext(ctx context.Context, d *auth.Device, p *searchPlan, ev *storage.EventRecord, ignored map[string]bool, upto int64, opts *clientevent.Options) (*searchContext, error) {
	vis, err := a.loadVisibility(ctx, ev.RoomNID, d.UserID, upto)
	if err != nil {
		return nil, err
	}
	var before, after []*storage.EventRecord
	if p.before > 0 {
		// Down to the backfilled history, below 0.
		if before, err = a.db.SyncRoomPage(ctx, ev.RoomNID, ev.StreamPos-1, math.MinInt64, p.before, true); err != nil {
			return nil, err
		}
	}
	if p.after > 0 {
		if after, err = a.db.SyncRoomPage(ctx, ev.RoomNID, ev.StreamPos, upto, p.after, false); err != nil {
			return nil, err
		}
	}
	start, end := ev.StreamPos-1, ev.StreamPos
	if len(before) > 0 {
		start = before[len(before)-1].StreamPos - 1
	}
	if len(after) > 0 {
		end = after[len(after)-1].StreamPos
	}
	keep := func(evs []*storage.EventRecord) []*storage.EventRecord {
		out := evs[:0:0]
		for _, e := range evs {
			if vis.canSee(e) && !(e.StateKey == nil && ignored[e.Sender]) {
				out = append(out, e)
			}
		}
		return out
	}
	before, after = keep(before), keep(after)
	sc := &searchContext{
		Start: synctoken.Pagination(start), End: synctoken.Pagination(end),
		EventsBefore: opts.FormatAll(before), EventsAfter: opts.FormatAll(after),
	}
	if p.withProfiles {
		all := append(append([]*storage.EventRecord{ev}, before...), after...)
		members, err := a.membersAtSnapshot(ctx, ev.StateAfterNID, sendersOf(all))
		if err != nil {
			return nil, err
		}
		sc.ProfileInfo = map[string]profileInfo{}
		for _, m := range members {
			if m.StateKey == nil {
				continue
			}
			sc.ProfileInfo[*m.StateKey] = profileInfo{
				DisplayName: gjson.GetBytes(m.JSON, "content.displayname").Str,
				AvatarURL:   gjson.GetBytes(m.JSON, "content.avatar_url").Str,
			}
		}
	}
	return sc, nil
}

// searchState returns the state of each room of the results: the current
// state of rooms the user is joined to, else the state when their
// membership last changed (what they could see when they left).
func (a *API) searchState(ctx context.Context, found []*storage.EventRecord, scopeOf map[int64]*searchScope, opts *clientevent.Options) (map[string][]jsonRaw, error) {
	out := map[string][]jsonRaw{}
	for _, ev := range found {
		s := scopeOf[ev.RoomNID]
		if _, done := out[s.m.RoomID]; done {
			continue
		}
		var state []*storage.EventRecord
		var err error
		if s.m.Membership == "join" {
			state, err = a.db.SyncCurrentState(ctx, s.m.RoomNID, true, nil)
		} else {
			var mem []*storage.EventRecord
			if mem, err = a.db.EventsByNID(ctx, []int64{s.m.EventNID}); err == nil && len(mem) == 1 {
				state, err = a.db.SyncSnapshotState(ctx, mem[0].StateAfterNID, true, nil)
			}
		}
		if err != nil {
			return nil, err
		}
		sortByPos(state)
		out[s.m.RoomID] = opts.FormatAll(state)
	}
	return out, nil
}

// groupResults partitions the results by each grouping key. A group's
// next_batch continues within the group: exactly in the recent order; in
// rank order from the group's results counted so far, which are only those
// of pages of the same group (after a page of all groups, the group's
// results on earlier pages come again).
func groupResults(p *searchPlan, found []*storage.EventRecord, more bool) map[string]map[string]*searchGroup {
	out := map[string]map[string]*searchGroup{}
	for _, key := range p.groupBy {
		groups := map[string]*searchGroup{}
		lastOf := map[string]int{}
		for i, ev := range found {
			value := ev.RoomID
			if key == "sender" {
				value = ev.Sender
			}
			g := groups[value]
			if g == nil {
				g = &searchGroup{Order: len(groups) + 1, Results: []string{}}
				groups[value] = g
			}
			g.Results = append(g.Results, ev.EventID)
			lastOf[value] = i
		}
		if more {
			for value, g := range groups {
				t := searchToken{Order: p.order, GroupKey: key, GroupValue: value}
				if p.order == "recent" {
					t.Pos = found[lastOf[value]].StreamPos
				} else {
					t.Offset = len(g.Results)
					if pt := p.token; pt != nil && pt.GroupKey == key && pt.GroupValue == value {
						t.Offset += pt.Offset
					}
				}
				g.NextBatch = t.String()
			}
		}
		out[key] = groups
	}
	return out
}

// searchableText is the text of an event the index searches, for
// highlights.
func searchableText(ev *storage.EventRecord) string {
	content := gjson.GetBytes(ev.JSON, "content")
	switch ev.Type {
	case "m.room.name":
		return content.Get("name").Str
	case "m.room.topic":
		return search.TopicText(content)
	}
	return content.Get("body").Str
}
