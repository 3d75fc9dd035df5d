package clientapi_test

// Tests of the push endpoints: /pushrules, /pushers and /notifications.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

const rules = v3 + "/pushrules"

func ids(list gjson.Result) string {
	var out []string
	list.ForEach(func(_, r gjson.Result) bool {
		out = append(out, r.Get("rule_id").Str)
		return true
	})
	return strings.Join(out, " ")
}

func TestPushRulesAPI(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")

	all := alice.ok(t, "GET", rules+"/", nil)
	if all.Get("global.override.0.rule_id").Str != ".m.rule.master" || !all.Get("global.content").IsArray() ||
		all.Get("global.underride.#").Int() != 5 {
		t.Fatalf("GET /pushrules/: %s", all.Raw)
	}
	if g := alice.ok(t, "GET", rules+"/global/", nil); g.Get("override.#").Int() != all.Get("global.override.#").Int() {
		t.Fatalf("GET /pushrules/global/: %s", g.Raw)
	}
	if k := alice.ok(t, "GET", rules+"/global/underride/", nil); ids(k) != ".m.rule.call .m.rule.encrypted_room_one_to_one .m.rule.room_one_to_one .m.rule.message .m.rule.encrypted" {
		t.Fatalf("GET /pushrules/global/underride/: %s", k.Raw)
	}
	msg := alice.ok(t, "GET", rules+"/global/underride/.m.rule.message", nil)
	if !msg.Get("default").Bool() || !msg.Get("enabled").Bool() || msg.Get("actions.0").Str != "notify" {
		t.Fatalf("GET .m.rule.message: %s", msg.Raw)
	}

	// PUT: new rules are first among the user's of their kind; before and
	// after place them.
	put := func(id, query string, body any) {
		t.Helper()
		alice.ok(t, "PUT", rules+"/global/override/"+url.PathEscape(id)+query, body)
	}
	cond := func(pattern string) map[string]any {
		return map[string]any{"conditions": []any{map[string]any{"kind": "event_match", "key": "content.body", "pattern": pattern}},
			"actions": []any{"notify"}}
	}
	put("a", "", cond("a"))
	put("b", "", cond("b"))
	put("c", "?before=a", cond("c"))
	put("d", "?after=a", cond("d"))
	override := alice.ok(t, "GET", rules+"/global/override/", nil)
	if got := ids(override); !strings.HasPrefix(got, ".m.rule.master b c a d .m.rule.suppress_notices") {
		t.Fatalf("override order: %s", got)
	}
	if r := alice.ok(t, "GET", rules+"/global/override/c", nil); r.Get("default").Bool() || !r.Get("enabled").Bool() ||
		r.Get("conditions.0.pattern").Str != "c" {
		t.Fatalf("GET c: %s", r.Raw)
	}
	// Content and room rules.
	alice.ok(t, "PUT", rules+"/global/content/cake", map[string]any{"pattern": "cake*lie", "actions": []any{"notify"}})
	if r := alice.ok(t, "GET", rules+"/global/content/cake", nil); r.Get("pattern").Str != "cake*lie" || r.Get("conditions").Exists() {
		t.Fatalf("content rule: %s", r.Raw)
	}
	alice.ok(t, "PUT", rules+"/global/room/"+url.PathEscape("!dj234r78wl45Gh4D:matrix.org"), map[string]any{"actions": []any{}})
	if r := alice.ok(t, "GET", rules+"/global/room/"+url.PathEscape("!dj234r78wl45Gh4D:matrix.org"), nil); r.Get("rule_id").Str != "!dj234r78wl45Gh4D:matrix.org" {
		t.Fatalf("room rule: %s", r.Raw)
	}

	// enabled and actions, on a user rule and on a default one.
	alice.ok(t, "PUT", rules+"/global/override/a/enabled", map[string]any{"enabled": false})
	if r := alice.ok(t, "GET", rules+"/global/override/a/enabled", nil); r.Get("enabled").Bool() {
		t.Fatalf("a still enabled: %s", r.Raw)
	}
	alice.ok(t, "PUT", rules+"/global/override/.m.rule.master/enabled", map[string]any{"enabled": true})
	if r := alice.ok(t, "GET", rules+"/global/override/.m.rule.master", nil); !r.Get("enabled").Bool() {
		t.Fatalf("master not enabled: %s", r.Raw)
	}
	alice.ok(t, "PUT", rules+"/global/underride/.m.rule.message/actions",
		map[string]any{"actions": []any{"notify", map[string]any{"set_tweak": "sound", "value": "ding"}, "dont_notify"}})
	if r := alice.ok(t, "GET", rules+"/global/underride/.m.rule.message/actions", nil); strings.TrimSpace(r.Raw) != `{"actions":["notify",{"set_tweak":"sound","value":"ding"}]}` {
		t.Fatalf("actions: %s", r.Raw)
	}
	// Replacing a rule keeps its place and its enabled flag.
	put("a", "", cond("aa"))
	if r := alice.ok(t, "GET", rules+"/global/override/a", nil); r.Get("enabled").Bool() || r.Get("conditions.0.pattern").Str != "aa" {
		t.Fatalf("replaced a: %s", r.Raw)
	}
	// DELETE.
	alice.ok(t, "DELETE", rules+"/global/override/b", nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", rules+"/global/override/b", nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "DELETE", rules+"/global/override/b", nil)

	// Errors.
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", rules+"/global/override/nope", nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", rules+"/global/content/.m.rule.message", nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "PUT", rules+"/global/override/nope/enabled", map[string]any{"enabled": true})
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", rules+"/global/override/nope/actions", nil)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "PUT", rules+"/global/override/.m.rule.mine", cond("x"))
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "PUT", rules+"/global/override/.m.rule.master", cond("x"))
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "DELETE", rules+"/global/underride/.m.rule.message", nil)
	alice.fails(t, http.StatusBadRequest, "M_UNKNOWN", "PUT", rules+"/global/override/e?before=nope", cond("x"))
	alice.fails(t, http.StatusBadRequest, "M_UNKNOWN", "PUT", rules+"/global/override/e?after=.m.rule.master", cond("x"))
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", rules+"/device/", nil)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", rules+"/global/everything/x", nil)
	alice.fails(t, http.StatusBadRequest, "M_MISSING_PARAM", "PUT", rules+"/global/override/e", map[string]any{})
	alice.fails(t, http.StatusBadRequest, "M_MISSING_PARAM", "PUT", rules+"/global/content/e", map[string]any{"actions": []any{}})
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "PUT", rules+"/global/override/e", map[string]any{"actions": []any{"explode"}})
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "PUT", rules+"/global/override/e",
		map[string]any{"actions": []any{}, "conditions": []any{map[string]any{"kind": "event_match", "key": "type"}}})
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "PUT", rules+"/global/room/not-a-room", map[string]any{"actions": []any{}})
	alice.fails(t, http.StatusBadRequest, "M_NOT_JSON", "PUT", rules+"/global/override/e", "{")
	alice.fails(t, http.StatusBadRequest, "M_MISSING_PARAM", "PUT", rules+"/global/override/a/enabled", map[string]any{})
	alice.fails(t, http.StatusBadRequest, "M_BAD_JSON", "PUT", rules+"/global/override/a/enabled", map[string]any{"enabled": "yes"})
	alice.fails(t, http.StatusBadRequest, "M_MISSING_PARAM", "PUT", rules+"/global/override/a/actions", map[string]any{})
	// Nothing of the refused requests was stored.
	if got := ids(alice.ok(t, "GET", rules+"/global/override/", nil)); !strings.HasPrefix(got, ".m.rule.master c a d .m.rule.suppress_notices") {
		t.Fatalf("override after the refusals: %s", got)
	}

	// Each user has their own rules.
	bob := newUser(t, s, "bob")
	bob.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", rules+"/global/override/c", nil)
	if r := bob.ok(t, "GET", rules+"/global/override/.m.rule.invite_for_me", nil); r.Get("conditions.2.pattern").Str != bob.id {
		t.Fatalf("bob's invite rule: %s", r.Raw)
	}
}

func TestPushersAPI(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	const gw = "https://push.example.org/_matrix/push/v1/notify"
	pusher := func(overrides map[string]any) map[string]any {
		p := map[string]any{"kind": "http", "app_id": "org.example.app", "pushkey": "key1", "app_display_name": "App",
			"device_display_name": "Phone", "lang": "en", "profile_tag": "tag", "data": map[string]any{"url": gw, "format": "event_id_only", "x": 1}}
		for k, v := range overrides {
			if v == nil {
				delete(p, k)
			} else {
				p[k] = v
			}
		}
		return p
	}
	if r := alice.ok(t, "GET", v3+"/pushers", nil); strings.TrimSpace(r.Raw) != `{"pushers":[]}` {
		t.Fatalf("no pushers: %s", r.Raw)
	}
	alice.ok(t, "POST", v3+"/pushers/set", pusher(nil))
	alice.ok(t, "POST", v3+"/pushers/set", pusher(map[string]any{"pushkey": "key2", "lang": "fr"}))
	r := alice.ok(t, "GET", v3+"/pushers", nil)
	if r.Get("pushers.#").Int() != 2 || r.Get("pushers.0.pushkey").Str != "key1" || r.Get("pushers.0.kind").Str != "http" ||
		r.Get("pushers.0.data.url").Str != gw || r.Get("pushers.0.data.x").Int() != 1 || r.Get("pushers.0.profile_tag").Str != "tag" ||
		r.Get("pushers.1.lang").Str != "fr" || r.Get("pushers.0.app_display_name").Str != "App" {
		t.Fatalf("pushers: %s", r.Raw)
	}
	// Update in place.
	alice.ok(t, "POST", v3+"/pushers/set", pusher(map[string]any{"device_display_name": "New phone"}))
	if r := alice.ok(t, "GET", v3+"/pushers", nil); r.Get("pushers.#").Int() != 2 || r.Get("pushers.0.device_display_name").Str != "New phone" {
		t.Fatalf("after update: %s", r.Raw)
	}
	// Another user takes the pushkey: alice's goes unless append.
	bob := newUser(t, s, "bob")
	bob.ok(t, "POST", v3+"/pushers/set", pusher(map[string]any{"append": true}))
	if n := alice.ok(t, "GET", v3+"/pushers", nil).Get("pushers.#").Int(); n != 2 {
		t.Fatalf("append removed alice's pusher: %d", n)
	}
	bob.ok(t, "POST", v3+"/pushers/set", pusher(nil))
	if r := alice.ok(t, "GET", v3+"/pushers", nil); r.Get("pushers.#").Int() != 1 || r.Get("pushers.0.pushkey").Str != "key2" {
		t.Fatalf("bob's pusher without append: %s", r.Raw)
	}
	// kind null deletes.
	alice.ok(t, "POST", v3+"/pushers/set", map[string]any{"kind": nil, "app_id": "org.example.app", "pushkey": "key2"})
	if r := alice.ok(t, "GET", v3+"/pushers", nil); strings.TrimSpace(r.Raw) != `{"pushers":[]}` {
		t.Fatalf("after delete: %s", r.Raw)
	}

	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"no kind", pusher(map[string]any{"kind": nil}), 400, "M_MISSING_PARAM"},
		{"no pushkey", pusher(map[string]any{"pushkey": nil}), 400, "M_MISSING_PARAM"},
		{"no lang", pusher(map[string]any{"lang": nil}), 400, "M_MISSING_PARAM"},
		{"no data", pusher(map[string]any{"data": nil}), 400, "M_MISSING_PARAM"},
		{"no url", pusher(map[string]any{"data": map[string]any{}}), 400, "M_MISSING_PARAM"},
		{"email", pusher(map[string]any{"kind": "email"}), 400, "M_INVALID_PARAM"},
		{"long app_id", pusher(map[string]any{"app_id": strings.Repeat("a", 65)}), 400, "M_INVALID_PARAM"},
		{"long pushkey", pusher(map[string]any{"pushkey": strings.Repeat("k", 513)}), 400, "M_INVALID_PARAM"},
		{"http", pusher(map[string]any{"data": map[string]any{"url": "http://push.example.org/_matrix/push/v1/notify"}}), 400, "M_INVALID_PARAM"},
		{"wrong path", pusher(map[string]any{"data": map[string]any{"url": "https://push.example.org/notify"}}), 400, "M_INVALID_PARAM"},
		{"loopback", pusher(map[string]any{"data": map[string]any{"url": "https://127.0.0.1:5000/_matrix/push/v1/notify"}}), 400, "M_INVALID_PARAM"},
		{"private", pusher(map[string]any{"data": map[string]any{"url": "https://10.1.2.3/_matrix/push/v1/notify"}}), 400, "M_INVALID_PARAM"},
		{"link-local v6", pusher(map[string]any{"data": map[string]any{"url": "https://[fe80::1]/_matrix/push/v1/notify"}}), 400, "M_INVALID_PARAM"},
		{"localhost", pusher(map[string]any{"data": map[string]any{"url": "https://localhost/_matrix/push/v1/notify"}}), 400, "M_INVALID_PARAM"},
		{"bad format", pusher(map[string]any{"data": map[string]any{"url": gw, "format": "full"}}), 400, "M_INVALID_PARAM"},
		{"data not an object", pusher(map[string]any{"data": "x"}), 400, "M_BAD_JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice.fails(t, tc.status, tc.code, "POST", v3+"/pushers/set", tc.body)
		})
	}
	if r := alice.ok(t, "GET", v3+"/pushers", nil); strings.TrimSpace(r.Raw) != `{"pushers":[]}` {
		t.Fatalf("a refused pusher was stored: %s", r.Raw)
	}

	// push_allow_private_addresses lets a gateway on the local network in.
	p := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) { cfg.PushAllowPrivateAddresses = true }))[0]
	carol := newUser(t, p, "carol")
	carol.ok(t, "POST", v3+"/pushers/set", pusher(map[string]any{"data": map[string]any{"url": "https://10.1.2.3/_matrix/push/v1/notify"}}))
}

func TestNotificationsAPI(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", room(roomID)+"/join", map[string]any{})
	newUser(t, s, "carol").ok(t, "POST", room(roomID)+"/join", map[string]any{})
	var sent []string
	for i := range 5 {
		content := map[string]any{"msgtype": "m.text", "body": "message " + strconv.Itoa(i)}
		if i == 3 {
			content["m.mentions"] = map[string]any{"user_ids": []string{bob.id}}
		}
		sent = append(sent, alice.send(t, roomID, "n"+strconv.Itoa(i), content))
	}
	var all gjson.Result
	deadline := time.Now().Add(15 * time.Second)
	for all = bob.ok(t, "GET", v3+"/notifications", nil); all.Get("notifications.#").Int() < 5; all = bob.ok(t, "GET", v3+"/notifications", nil) {
		if time.Now().After(deadline) {
			t.Fatalf("notifications: %s", all.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first := all.Get("notifications.0")
	if first.Get("event.event_id").Str != sent[4] || first.Get("room_id").Str != roomID || first.Get("read").Bool() ||
		first.Get("actions.0").Str != "notify" || first.Get("ts").Int() == 0 || first.Get("event.content.body").Str != "message 4" ||
		all.Get("next_token").Exists() {
		t.Fatalf("newest notification: %s", all.Raw)
	}
	// Pages of two, newest first.
	var got []string
	from := ""
	for range 5 {
		q := "?limit=2"
		if from != "" {
			q += "&from=" + url.QueryEscape(from)
		}
		page := bob.ok(t, "GET", v3+"/notifications"+q, nil)
		page.Get("notifications").ForEach(func(_, n gjson.Result) bool {
			got = append(got, n.Get("event.event_id").Str)
			return true
		})
		if from = page.Get("next_token").Str; from == "" {
			break
		}
	}
	if len(got) != 5 || got[0] != sent[4] || got[4] != sent[0] {
		t.Fatalf("paginated: %v, sent %v", got, sent)
	}
	hl := bob.ok(t, "GET", v3+"/notifications?only=highlight", nil)
	if hl.Get("notifications.#").Int() != 1 || hl.Get("notifications.0.event.event_id").Str != sent[3] {
		t.Fatalf("highlights: %s", hl.Raw)
	}
	// A receipt marks them read.
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(sent[2]), map[string]any{})
	after := bob.ok(t, "GET", v3+"/notifications", nil)
	if after.Get("notifications.0.read").Bool() || !after.Get("notifications.2.read").Bool() || !after.Get("notifications.4.read").Bool() {
		t.Fatalf("read flags after a receipt on the third: %s", after.Raw)
	}
	if r := alice.ok(t, "GET", v3+"/notifications", nil); r.Get("notifications.#").Int() != 0 {
		t.Fatalf("alice was notified of her own messages: %s", r.Raw)
	}
	bob.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", v3+"/notifications?from=abc", nil)
	bob.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", v3+"/notifications?limit=-1", nil)
}

// A device's pushers go with it: logging out stops its pushes, and the
// user's other devices keep theirs.
func TestPushersGoWithTheirDevice(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, phoneToken := s.RegisterUser(t, "alice")
	laptopToken, _ := s.Login(t, "alice")
	set := func(token, pushkey string) {
		s.DoJSON(t, "POST", v3+"/pushers/set", token, map[string]any{"kind": "http", "app_id": "org.example.app", "pushkey": pushkey,
			"app_display_name": "App", "device_display_name": pushkey, "lang": "en",
			"data": map[string]any{"url": "https://push.example.org/_matrix/push/v1/notify"}}, nil)
	}
	set(phoneToken, "phone")
	set(laptopToken, "laptop")
	s.DoJSON(t, "POST", v3+"/logout", phoneToken, map[string]any{}, nil)
	var got struct {
		Pushers []struct {
			Pushkey string `json:"pushkey"`
		} `json:"pushers"`
	}
	s.DoJSON(t, "GET", v3+"/pushers", laptopToken, nil, &got)
	if len(got.Pushers) != 1 || got.Pushers[0].Pushkey != "laptop" {
		t.Fatalf("pushers after the phone logged out: %+v, want only the laptop's", got.Pushers)
	}
}
