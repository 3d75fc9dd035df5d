package httputil

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestRoutingEscapedIdentifiers: path variables come out decoded however
// the client escaped them: '!' and '$' raw or escaped, an escaped '/'
// kept inside its variable, '#' and '%' escaped.
func TestRoutingEscapedIdentifiers(t *testing.T) {
	router := NewRouter()
	var room, event string
	router.HandleFunc("/rooms/{roomId}/event/{eventId}", func(w http.ResponseWriter, r *http.Request) {
		room, event = PathVar(r, "roomId"), PathVar(r, "eventId")
		WriteJSON(w, r, http.StatusOK, map[string]any{})
	}).Methods("GET")
	for _, c := range []struct{ path, room, event string }{
		{"/rooms/!abc:x/event/$ev:x", "!abc:x", "$ev:x"},
		{"/rooms/%21abc%3Ax/event/%24ev", "!abc:x", "$ev"},
		{"/rooms/%21abc:x/event/$ab%2Fcd+ef", "!abc:x", "$ab/cd+ef"},
		{"/rooms/%23alias:x/event/$100%25", "#alias:x", "$100%"},
		{"/rooms/!a%20b:x/event/$e", "!a b:x", "$e"},
	} {
		room, event = "", ""
		rec, _ := serve(t, router, Options{}, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != http.StatusOK || room != c.room || event != c.event {
			t.Errorf("%s: status %d, roomId %q, eventId %q; want %q and %q", c.path, rec.Code, room, event, c.room, c.event)
		}
	}
}

// TestCheapEscapedPath: a path that is its own escaping gets it as RawPath,
// so that the router's many EscapedPath calls allocate nothing; the URL
// still means the same path. Other paths are left to url.URL.
func TestCheapEscapedPath(t *testing.T) {
	for _, c := range []struct {
		raw   string
		cheap bool
	}{
		{"/_matrix/client/v3/rooms/%21abc:x/send/m.room.message/t1", true},
		{"/_matrix/client/v3/rooms/!abc:x/send/m.room.message/t1", true},
		{"/_matrix/client/v3/rooms/!abc:x/event/$a%2Fb", false}, // already has a RawPath
		{"/_matrix/client/v3/directory/room/%23alias:x", false}, // '#' must be escaped
		{"/_matrix/client/v3/rooms/!a%25b:x/state", false},      // so must '%'
	} {
		u, err := url.Parse(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		before := u.EscapedPath()
		got := withCheapEscapedPath(u)
		if got.Path != u.Path || got.EscapedPath() == "" {
			t.Fatalf("%s: path changed to %q", c.raw, got.Path)
		}
		if p, err := url.PathUnescape(got.EscapedPath()); err != nil || p != u.Path {
			t.Fatalf("%s: escaped path %q does not decode to the path %q", c.raw, got.EscapedPath(), u.Path)
		}
		if !c.cheap {
			if got != u || got.EscapedPath() != before {
				t.Fatalf("%s: changed though it is not its own escaping", c.raw)
			}
			continue
		}
		if allocs := testing.AllocsPerRun(10, func() { _ = got.EscapedPath() }); allocs != 0 {
			t.Fatalf("%s: EscapedPath allocates %v times", c.raw, allocs)
		}
	}
}
