package federation_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

type dirPage struct {
	Chunk []struct {
		RoomID           string `json:"room_id"`
		Name             string `json:"name"`
		Topic            string `json:"topic"`
		CanonicalAlias   string `json:"canonical_alias"`
		NumJoinedMembers int    `json:"num_joined_members"`
		RoomType         string `json:"room_type"`
		JoinRule         string `json:"join_rule"`
	} `json:"chunk"`
	NextBatch string `json:"next_batch"`
	PrevBatch string `json:"prev_batch"`
	Total     int    `json:"total_room_count_estimate"`
}

func (p dirPage) ids() []string {
	var ids []string
	for _, c := range p.Chunk {
		ids = append(ids, c.RoomID)
	}
	return ids
}

// publishedRoomsOnA publishes on A: rooms "Cats" (3 members), "Dogs" (2),
// "Cat pictures" (1, its topic about dogs) and a space, and keeps one room
// private. It returns the published room IDs in listing order (most
// members first, then by room ID) and the private room.
func publishedRoomsOnA(t *testing.T, a *servertest.Server) (listed []string, private string) {
	t.Helper()
	_, token := a.RegisterUser(t, "alice")
	create := func(body map[string]any) string {
		var resp struct {
			RoomID string `json:"room_id"`
		}
		a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", token, body, &resp)
		return resp.RoomID
	}
	cats := create(map[string]any{"visibility": "public", "preset": "public_chat", "name": "Cats", "room_alias_name": "cats"})
	dogs := create(map[string]any{"visibility": "public", "preset": "public_chat", "name": "Dogs", "topic": "woof"})
	pics := create(map[string]any{"visibility": "public", "preset": "public_chat", "name": "Cat pictures", "topic": "no dogs allowed"})
	space := create(map[string]any{"visibility": "public", "preset": "public_chat", "name": "Pets", "creation_content": map[string]any{"type": "m.space"}})
	private = create(map[string]any{"name": "Secret cats"})
	for i, room := range []string{cats, cats, dogs} {
		_, tok := a.RegisterUser(t, fmt.Sprint("member", i))
		a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/join", tok, map[string]any{}, nil)
	}
	// pics and space have one member each: by room ID.
	if space < pics {
		return []string{cats, dogs, space, pics}, private
	}
	return []string{cats, dogs, pics, space}, private
}

// TestPublicRoomsOverFederation: a user of B lists A's directory through
// B's client API (/publicRooms?server=A), which asks A over federation,
// and gets what A's own users get, page by page and filtered.
func TestPublicRoomsOverFederation(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	listed, private := publishedRoomsOnA(t, a)
	_, bToken := b.RegisterUser(t, "bea")
	remote := "/_matrix/client/v3/publicRooms?server=" + url.QueryEscape(a.Name)

	// The whole listing: as A serves it to its own clients, byte for byte
	// the same entries.
	var local, viaB dirPage
	a.DoJSON(t, http.MethodGet, "/_matrix/client/v3/publicRooms", "", nil, &local)
	b.DoJSON(t, http.MethodGet, remote, bToken, nil, &viaB)
	if !reflect.DeepEqual(local, viaB) {
		t.Fatalf("A's listing %+v, through B %+v", local, viaB)
	}
	if !reflect.DeepEqual(viaB.ids(), listed) || viaB.Total != 4 || viaB.NextBatch != "" {
		t.Fatalf("listing %+v, want rooms %v", viaB, listed)
	}
	if c := viaB.Chunk[0]; c.Name != "Cats" || c.NumJoinedMembers != 3 || c.CanonicalAlias != "#cats:"+a.Name || c.JoinRule != "public" {
		t.Errorf("first entry %+v", c)
	}
	for _, id := range viaB.ids() {
		if id == private {
			t.Error("the private room is listed")
		}
	}
	// B's own directory is empty: the parameter chose the server.
	var own dirPage
	b.DoJSON(t, http.MethodGet, "/_matrix/client/v3/publicRooms", bToken, nil, &own)
	if len(own.Chunk) != 0 {
		t.Errorf("B's own directory: %+v", own)
	}

	// Pages of 3 forwards, then back, with A's tokens.
	var p1, p2, back dirPage
	b.DoJSON(t, http.MethodGet, remote+"&limit=3", bToken, nil, &p1)
	if !reflect.DeepEqual(p1.ids(), listed[:3]) || p1.NextBatch == "" || p1.PrevBatch != "" {
		t.Fatalf("page 1: %+v", p1)
	}
	var localP1 dirPage
	a.DoJSON(t, http.MethodGet, "/_matrix/client/v3/publicRooms?limit=3", "", nil, &localP1)
	if localP1.NextBatch != p1.NextBatch {
		t.Errorf("tokens differ: A %q, through B %q", localP1.NextBatch, p1.NextBatch)
	}
	b.DoJSON(t, http.MethodGet, remote+"&limit=3&since="+url.QueryEscape(p1.NextBatch), bToken, nil, &p2)
	if !reflect.DeepEqual(p2.ids(), listed[3:]) || p2.NextBatch != "" || p2.PrevBatch == "" {
		t.Fatalf("page 2: %+v", p2)
	}
	b.DoJSON(t, http.MethodGet, remote+"&limit=3&since="+url.QueryEscape(p2.PrevBatch), bToken, nil, &back)
	if !reflect.DeepEqual(back.ids(), listed[:3]) {
		t.Fatalf("back from page 2: %+v", back)
	}

	// Filtered (POST): a search term in names, topics and aliases; room
	// types; a filter with pages.
	post := func(body map[string]any) dirPage {
		t.Helper()
		var p dirPage
		b.DoJSON(t, http.MethodPost, remote, bToken, body, &p)
		return p
	}
	cats, dogs, pics := listed[0], listed[1], ""
	for _, c := range viaB.Chunk {
		if c.Name == "Cat pictures" {
			pics = c.RoomID
		}
	}
	if got := post(map[string]any{"filter": map[string]any{"generic_search_term": "CAT"}}).ids(); !reflect.DeepEqual(got, []string{cats, pics}) {
		t.Errorf("search cat: %v", got)
	}
	if got := post(map[string]any{"filter": map[string]any{"generic_search_term": "dogs"}}).ids(); !reflect.DeepEqual(got, []string{dogs, pics}) {
		t.Errorf("search dogs (a name and a topic): %v", got)
	}
	if got := post(map[string]any{"filter": map[string]any{"generic_search_term": "#cats:"}}).ids(); !reflect.DeepEqual(got, []string{cats}) {
		t.Errorf("search by alias: %v", got)
	}
	if p := post(map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}}); len(p.Chunk) != 1 || p.Chunk[0].RoomType != "m.space" || p.Chunk[0].Name != "Pets" {
		t.Errorf("room_types m.space: %+v", p)
	}
	if got := post(map[string]any{"filter": map[string]any{"room_types": []any{nil}}}).ids(); len(got) != 3 {
		t.Errorf("room_types null: %v", got)
	}
	f1 := post(map[string]any{"filter": map[string]any{"generic_search_term": "cat"}, "limit": 1})
	if !reflect.DeepEqual(f1.ids(), []string{cats}) || f1.NextBatch == "" || f1.Total != 2 {
		t.Fatalf("filtered page 1: %+v", f1)
	}
	f2 := post(map[string]any{"filter": map[string]any{"generic_search_term": "cat"}, "limit": 1, "since": f1.NextBatch})
	if !reflect.DeepEqual(f2.ids(), []string{pics}) || f2.NextBatch != "" {
		t.Fatalf("filtered page 2: %+v", f2)
	}
	if p := post(map[string]any{"third_party_instance_id": "irc"}); len(p.Chunk) != 0 {
		t.Errorf("a third-party network has no rooms: %+v", p)
	}

	// Refusals: asking another server takes a user; A's own refusals
	// reach the client; an unreachable server is 404.
	for _, c := range []struct {
		method, path, token string
		body                any
		status              int
		code                string
	}{
		{"GET", remote, "", nil, 401, "M_MISSING_TOKEN"},
		{"GET", remote + "&since=garbage", bToken, nil, 400, "M_INVALID_PARAM"},
		{"POST", remote, bToken, map[string]any{"since": "garbage"}, 400, "M_INVALID_PARAM"},
		{"GET", "/_matrix/client/v3/publicRooms?server=" + url.QueryEscape("not a server"), bToken, nil, 400, "M_INVALID_PARAM"},
		{"GET", "/_matrix/client/v3/publicRooms?server=127.0.0.1:1", bToken, nil, 404, "M_NOT_FOUND"},
	} {
		status, body := b.Do(t, c.method, c.path, c.token, c.body)
		wantErr(t, c.method+" "+c.path, status, body, c.status, c.code)
	}
}

// TestFederationPublicRooms: the federation endpoint itself, with signed
// requests; it answers what the client API answers.
func TestFederationPublicRooms(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	listed, _ := publishedRoomsOnA(t, a)
	const path = "/_matrix/federation/v1/publicRooms"
	fed := b.SignedFederationClient()

	var all, clientAll dirPage
	if err := fed.DoJSON(ctxT(t), http.MethodGet, a.Name, path, nil, &all); err != nil {
		t.Fatal(err)
	}
	a.DoJSON(t, http.MethodGet, "/_matrix/client/v3/publicRooms", "", nil, &clientAll)
	if !reflect.DeepEqual(all, clientAll) || !reflect.DeepEqual(all.ids(), listed) {
		t.Fatalf("federation %+v, client %+v, want %v", all, clientAll, listed)
	}

	var p1, p2 dirPage
	if err := fed.DoJSON(ctxT(t), http.MethodGet, a.Name, path+"?limit=2&include_all_networks=false", nil, &p1); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p1.ids(), listed[:2]) || p1.NextBatch == "" || p1.Total != 4 {
		t.Fatalf("page 1: %+v", p1)
	}
	// The POST form pages with the same tokens.
	if err := fed.DoJSON(ctxT(t), http.MethodPost, a.Name, path, map[string]any{"limit": 2, "since": p1.NextBatch}, &p2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p2.ids(), listed[2:]) || p2.NextBatch != "" || p2.PrevBatch == "" {
		t.Fatalf("page 2: %+v", p2)
	}
	var filtered dirPage
	if err := fed.DoJSON(ctxT(t), http.MethodPost, a.Name, path, map[string]any{
		"filter": map[string]any{"generic_search_term": "dog", "room_types": []any{nil, "m.space"}},
	}, &filtered); err != nil {
		t.Fatal(err)
	}
	// "dog" is in Dogs' name and Cat pictures' topic, in listing order.
	var wantDog []string
	for _, c := range all.Chunk {
		if c.Name == "Dogs" || c.Name == "Cat pictures" {
			wantDog = append(wantDog, c.RoomID)
		}
	}
	if !reflect.DeepEqual(filtered.ids(), wantDog) || len(wantDog) != 2 {
		t.Errorf("filtered: %+v, want %v", filtered, wantDog)
	}
	var thirdParty dirPage
	if err := fed.DoJSON(ctxT(t), http.MethodGet, a.Name, path+"?third_party_instance_id=irc", nil, &thirdParty); err != nil || len(thirdParty.Chunk) != 0 {
		t.Errorf("third-party network: %+v, %v", thirdParty, err)
	}

	// Bad input gets the spec's errors; an unsigned request is refused.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"GET", path + "?limit=-1", nil, 400, "M_INVALID_PARAM"},
		{"GET", path + "?limit=ten", nil, 400, "M_INVALID_PARAM"},
		{"GET", path + "?since=garbage", nil, 400, "M_INVALID_PARAM"},
		{"GET", path + "?include_all_networks=maybe", nil, 400, "M_INVALID_PARAM"},
		{"GET", path + "?include_all_networks=true&third_party_instance_id=irc", nil, 400, "M_INVALID_PARAM"},
		{"POST", path, map[string]any{"filter": []any{}}, 400, "M_BAD_JSON"},
		{"POST", path, map[string]any{"limit": "2"}, 400, "M_BAD_JSON"},
		{"POST", path, map[string]any{"limit": -2}, 400, "M_INVALID_PARAM"},
		{"POST", path, json.RawMessage(`[]`), 400, "M_BAD_JSON"},
	} {
		err := fed.DoJSON(ctxT(t), c.method, a.Name, c.path, c.body, nil)
		wantFedErr(t, c.method+" "+c.path, err, c.status, c.code)
	}
	status, body := rawFed(t, a, path)
	wantErr(t, "unsigned", status, body, http.StatusUnauthorized, "M_UNAUTHORIZED")
}

// TestPublicRoomsFromServerWithoutPOST: a server that knows only the GET
// form is asked with a GET, and its page is filtered by the asking server;
// a garbled entry is dropped; a refusal of this server's request does not
// look to the client like a refusal of its access token.
func TestPublicRoomsFromServerWithoutPOST(t *testing.T) {
	b := servertest.Start(t, 1)[0]
	_, token := b.RegisterUser(t, "bea")
	var mu sync.Mutex
	var gets []url.Values
	cert, err := b.CA.IssueTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path != "/_matrix/federation/v1/publicRooms" || r.Method != http.MethodGet:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		case r.URL.Query().Get("since") == "refused":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errcode":"M_UNAUTHORIZED","error":"who are you?"}`)
		default:
			mu.Lock()
			gets = append(gets, r.URL.Query())
			mu.Unlock()
			fmt.Fprint(w, `{"chunk":[
				{"room_id":"!a:old","name":"Cats","num_joined_members":9,"world_readable":false,"guest_can_join":false},
				{"room_id":"!b:old","name":"Dogs","num_joined_members":5,"world_readable":false,"guest_can_join":false},
				{"name":"cat without a room ID","num_joined_members":2},
				{"room_id":"!c:old","topic":"a cat space","room_type":"m.space","num_joined_members":1,"world_readable":true,"guest_can_join":false}
			],"next_batch":"n1","total_room_count_estimate":40}`)
		}
	}))
	old.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	old.StartTLS()
	t.Cleanup(old.Close)
	remote := "/_matrix/client/v3/publicRooms?server=" + url.QueryEscape(old.Listener.Addr().String())

	var p dirPage
	b.DoJSON(t, http.MethodPost, remote, token, map[string]any{"filter": map[string]any{"generic_search_term": "cat"}, "limit": 10, "since": "s0"}, &p)
	if !reflect.DeepEqual(p.ids(), []string{"!a:old", "!c:old"}) || p.NextBatch != "n1" || p.Total != 40 {
		t.Fatalf("filtered here: %+v", p)
	}
	mu.Lock()
	asked := gets
	mu.Unlock()
	if len(asked) != 1 || asked[0].Get("limit") != "10" || asked[0].Get("since") != "s0" {
		t.Fatalf("the old server was asked %v", asked)
	}
	b.DoJSON(t, http.MethodPost, remote, token, map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}}, &p)
	if !reflect.DeepEqual(p.ids(), []string{"!c:old"}) {
		t.Fatalf("room types filtered here: %+v", p)
	}
	b.DoJSON(t, http.MethodGet, remote, token, nil, &p)
	if len(p.Chunk) != 3 {
		t.Fatalf("unfiltered: %+v", p)
	}
	status, body := b.Do(t, http.MethodGet, remote+"&since=refused", token, nil)
	wantErr(t, "refused by the remote", status, body, http.StatusForbidden, "M_FORBIDDEN")
}
