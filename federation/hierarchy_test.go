package federation_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// A space on A with rooms on A and on B: each server's users walk it in
// the spec's order, seeing only the rooms they may, with max_depth,
// suggested_only and pagination; B learns A's rooms through the
// federation /hierarchy.
func TestSpaceHierarchyAcrossServers(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	_, aliceToken := a.RegisterUser(t, "alice")
	_, bobToken := b.RegisterUser(t, "bob")
	create := func(s *servertest.Server, token string, body map[string]any) string {
		var out struct {
			RoomID string `json:"room_id"`
		}
		s.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", token, body, &out)
		return out.RoomID
	}
	space := create(a, aliceToken, map[string]any{"preset": "public_chat", "name": "the space", "creation_content": map[string]any{"type": "m.space"}})
	r1 := create(a, aliceToken, map[string]any{"preset": "public_chat", "name": "r1"})
	r2 := create(a, aliceToken, map[string]any{"preset": "private_chat", "name": "secret"})
	r3 := create(a, aliceToken, map[string]any{"preset": "public_chat", "name": "r3"})
	rb := create(b, bobToken, map[string]any{"preset": "public_chat", "name": "on b"})
	child := func(room string, content map[string]any) {
		a.DoJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(space)+"/state/m.space.child/"+url.PathEscape(room), aliceToken, content, nil)
	}
	child(r1, map[string]any{"via": []string{a.Name}, "order": "b"})
	child(r2, map[string]any{"via": []string{a.Name}})
	child(r3, map[string]any{"via": []string{a.Name}, "order": "a", "suggested": true})
	child(rb, map[string]any{"via": []string{b.Name}})
	child("!gone:"+a.Name, map[string]any{}) // no via: not a child

	type page struct {
		Rooms []struct {
			RoomID        string            `json:"room_id"`
			Name          string            `json:"name"`
			RoomType      string            `json:"room_type"`
			ChildrenState []json.RawMessage `json:"children_state"`
		} `json:"rooms"`
		NextBatch string `json:"next_batch"`
	}
	walk := func(s *servertest.Server, token, query string) ([]string, page) {
		t.Helper()
		var p page
		s.DoJSON(t, http.MethodGet, "/_matrix/client/v1/rooms/"+url.PathEscape(space)+"/hierarchy?"+query, token, nil, &p)
		var ids []string
		for _, r := range p.Rooms {
			ids = append(ids, r.RoomID)
		}
		return ids, p
	}
	if got, p := walk(a, aliceToken, ""); !slices.Equal(got, []string{space, r3, r1, r2, rb}) {
		t.Fatalf("alice's walk on A: %v, want %v", got, []string{space, r3, r1, r2, rb})
	} else if p.Rooms[0].RoomType != "m.space" || len(p.Rooms[0].ChildrenState) != 4 {
		t.Fatalf("the space's entry: %+v", p.Rooms[0])
	}
	// bob is not in the private room; B asks A about the space.
	if got, _ := walk(b, bobToken, ""); !slices.Equal(got, []string{space, r3, r1, rb}) {
		t.Fatalf("bob's walk on B: %v, want %v", got, []string{space, r3, r1, rb})
	}
	if got, _ := walk(b, bobToken, "max_depth=0"); !slices.Equal(got, []string{space}) {
		t.Fatalf("max_depth=0: %v", got)
	}
	if got, _ := walk(b, bobToken, "suggested_only=true"); !slices.Equal(got, []string{space, r3}) {
		t.Fatalf("suggested_only: %v", got)
	}
	got, p := walk(b, bobToken, "limit=2")
	if !slices.Equal(got, []string{space, r3}) || p.NextBatch == "" {
		t.Fatalf("first page: %v next %q", got, p.NextBatch)
	}
	got, p = walk(b, bobToken, "limit=2&from="+url.QueryEscape(p.NextBatch))
	if !slices.Equal(got, []string{r1, rb}) || p.NextBatch != "" {
		t.Fatalf("second page: %v next %q", got, p.NextBatch)
	}
	for _, q := range []string{"limit=0", "max_depth=-1", "from=nonsense", "from=" + url.QueryEscape("h1_10_0") + "&max_depth=3", "suggested_only=maybe"} {
		if status, body := b.Do(t, http.MethodGet, "/_matrix/client/v1/rooms/"+url.PathEscape(space)+"/hierarchy?"+q, bobToken, nil); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, status, body)
		}
	}
	// The private room as a root: bob may not see it.
	if status, body := b.Do(t, http.MethodGet, "/_matrix/client/v1/rooms/"+url.PathEscape(r2)+"/hierarchy", bobToken, nil); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Errorf("a private root: %d %s", status, body)
	}
}
