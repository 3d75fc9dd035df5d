package federation_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func (ro *roomOnA) bPost(t *testing.T, path string, body, out any) error {
	t.Helper()
	return ro.b.SignedFederationClient().DoJSON(ctxT(t), http.MethodPost, ro.a.Name, path, body, out)
}

func idsOf(t *testing.T, pdus []json.RawMessage) []string {
	t.Helper()
	var out []string
	for _, raw := range pdus {
		out = append(out, eventIDOf(t, raw))
	}
	return out
}

func TestBackfill(t *testing.T) {
	ro := newRoomOnA(t)
	// History only for members from their join on: what alice says before
	// B's user joins is not B's to read.
	empty := ""
	ro.send(t, "m.room.history_visibility", &empty, map[string]string{"history_visibility": "joined"})
	hidden := ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "before bob"})
	path := func(params string) string {
		return "/_matrix/federation/v1/backfill/" + url.PathEscape(ro.roomID) + "?" + params
	}
	from := "v=" + url.QueryEscape(hidden)
	wantFedErr(t, "B not in the room", ro.bGet(t, path(from+"&limit=5"), nil), 403, "M_FORBIDDEN")
	status, body := rawFed(t, ro.a, path(from+"&limit=5"))
	wantErr(t, "unsigned", status, body, 401, "M_UNAUTHORIZED")

	ro.joinB(t)
	join := ro.last
	var msgs []string
	for range 4 {
		msgs = append(msgs, ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "after"}))
	}
	from = "v=" + url.QueryEscape(msgs[3])

	var txn txnResp
	if err := ro.bGet(t, path(from+"&limit=3"), &txn); err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(t, txn.PDUs), []string{msgs[3], msgs[2], msgs[1]}; !slices.Equal(got, want) || txn.Origin != ro.a.Name {
		t.Fatalf("backfill limit 3: %v, want %v (origin %s)", got, want, txn.Origin)
	}
	// Far enough back, B's join is there, and the shared history from
	// before the change to "joined", but not what was said between the
	// change and the join.
	txn = txnResp{}
	if err := ro.bGet(t, path(from+"&limit=1000"), &txn); err != nil {
		t.Fatal(err)
	}
	got := idsOf(t, txn.PDUs)
	if !slices.Contains(got, join) || slices.Contains(got, hidden) || !slices.Contains(got, ro.messages[0]) || got[0] != msgs[3] {
		t.Fatalf("backfill to the start: %v (join %s, hidden %s)", got, join, hidden)
	}
	// Two starting points: both included once.
	txn = txnResp{}
	if err := ro.bGet(t, path(from+"&v="+url.QueryEscape(msgs[1])+"&limit=2"), &txn); err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(t, txn.PDUs), []string{msgs[3], msgs[2]}; !slices.Equal(got, want) {
		t.Fatalf("backfill from two events: %v, want %v", got, want)
	}

	for _, c := range []struct{ params, code string }{
		{from + "&limit=many", "M_INVALID_PARAM"},
		{from + "&limit=0", "M_INVALID_PARAM"},
		{from, "M_MISSING_PARAM"},
		{"limit=5", "M_MISSING_PARAM"},
	} {
		wantFedErr(t, c.params, ro.bGet(t, path(c.params), nil), 400, c.code)
	}
	// A server ACL denying IP literals shuts B (127.0.0.1:port) out.
	ro.send(t, "m.room.server_acl", &empty, map[string]any{"allow": []string{"*"}, "allow_ip_literals": false})
	wantFedErr(t, "denied by the ACL", ro.bGet(t, path(from+"&limit=5"), nil), 403, "M_FORBIDDEN")
	wantFedErr(t, "denied by the ACL", ro.bPost(t, "/_matrix/federation/v1/get_missing_events/"+url.PathEscape(ro.roomID),
		map[string]any{"earliest_events": []string{}, "latest_events": []string{msgs[3]}}, nil), 403, "M_FORBIDDEN")
	wantFedErr(t, "unknown room", ro.bGet(t, "/_matrix/federation/v1/backfill/"+url.PathEscape("!nope:"+ro.a.Name)+"?"+from+"&limit=5", nil), 404, "M_NOT_FOUND")
}

func TestGetMissingEvents(t *testing.T) {
	ro := newRoomOnA(t)
	path := "/_matrix/federation/v1/get_missing_events/" + url.PathEscape(ro.roomID)
	req := func(earliest, latest string, limit int) map[string]any {
		r := map[string]any{"earliest_events": []string{earliest}, "latest_events": []string{latest}}
		if limit != 0 {
			r["limit"] = limit
		}
		return r
	}
	wantFedErr(t, "B not in the room", ro.bPost(t, path, req(ro.messages[0], ro.messages[2], 0), nil), 403, "M_FORBIDDEN")

	ro.joinB(t)
	var msgs []string
	for range 5 {
		msgs = append(msgs, ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "m"}))
	}
	var resp struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := ro.bPost(t, path, req(msgs[0], msgs[4], 0), &resp); err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(t, resp.Events), []string{msgs[1], msgs[2], msgs[3]}; !slices.Equal(got, want) {
		t.Fatalf("missing events: %v, want %v", got, want)
	}
	resp.Events = nil
	if err := ro.bPost(t, path, req(msgs[0], msgs[4], 2), &resp); err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(t, resp.Events), []string{msgs[2], msgs[3]}; !slices.Equal(got, want) {
		t.Fatalf("missing events, limit 2: %v, want %v", got, want)
	}
	// min_depth stops the walk.
	resp.Events = nil
	last, err := ro.a.Roomserver().Event(ctxT(t), msgs[3])
	if err != nil {
		t.Fatal(err)
	}
	r := req(msgs[0], msgs[4], 0)
	r["min_depth"] = last.Event.Depth()
	if err := ro.bPost(t, path, r, &resp); err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(t, resp.Events), []string{msgs[3]}; !slices.Equal(got, want) {
		t.Fatalf("missing events, min_depth: %v, want %v", got, want)
	}

	wantFedErr(t, "limit 0", ro.bPost(t, path, map[string]any{"earliest_events": []string{}, "latest_events": []string{msgs[4]}, "limit": 0}, nil), 400, "M_INVALID_PARAM")
	wantFedErr(t, "limit not a number", ro.bPost(t, path, map[string]any{"earliest_events": []string{}, "latest_events": []string{msgs[4]}, "limit": "ten"}, nil), 400, "M_BAD_JSON")
	wantFedErr(t, "no latest_events", ro.bPost(t, path, map[string]any{"earliest_events": []string{}}, nil), 400, "M_BAD_JSON")
	wantFedErr(t, "unknown room", ro.bPost(t, "/_matrix/federation/v1/get_missing_events/"+url.PathEscape("!nope:"+ro.a.Name), req(msgs[0], msgs[4], 0), nil), 404, "M_NOT_FOUND")
}
