package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

const backupAlgorithm = "m.megolm_backup.v1.curve25519-aes-sha2"

func backupKey(index, forwarded int, verified bool, marker string) map[string]any {
	return map[string]any{"first_message_index": index, "forwarded_count": forwarded, "is_verified": verified,
		"session_data": map[string]any{"ephemeral": "e", "ciphertext": marker, "mac": "m"}}
}

// TestKeyBackupVersions: create, read (latest and by number), update and
// delete backup versions, with the spec's errors.
func TestKeyBackupVersions(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	alice.fails(t, 404, "M_NOT_FOUND", "GET", v3+"/room_keys/version", nil)
	v1 := alice.ok(t, "POST", v3+"/room_keys/version", map[string]any{"algorithm": backupAlgorithm,
		"auth_data": map[string]any{"public_key": "pk1"}}).Get("version").Str
	v2 := alice.ok(t, "POST", v3+"/room_keys/version", map[string]any{"algorithm": backupAlgorithm,
		"auth_data": map[string]any{"public_key": "pk2"}}).Get("version").Str
	if v1 == "" || v2 == "" || v1 == v2 {
		t.Fatalf("versions %q and %q", v1, v2)
	}
	latest := alice.ok(t, "GET", v3+"/room_keys/version", nil)
	if latest.Get("version").Str != v2 || latest.Get("algorithm").Str != backupAlgorithm ||
		latest.Get("auth_data.public_key").Str != "pk2" || latest.Get("count").Int() != 0 || !latest.Get("etag").Exists() {
		t.Fatalf("latest: %s", latest.Raw)
	}
	if got := alice.ok(t, "GET", v3+"/room_keys/version/"+v1, nil); got.Get("auth_data.public_key").Str != "pk1" {
		t.Fatalf("version %s: %s", v1, got.Raw)
	}
	bob.fails(t, 404, "M_NOT_FOUND", "GET", v3+"/room_keys/version", nil)
	bob.fails(t, 404, "M_NOT_FOUND", "GET", v3+"/room_keys/version/"+v1, nil)

	// Update: auth_data only.
	alice.ok(t, "PUT", v3+"/room_keys/version/"+v1, map[string]any{"algorithm": backupAlgorithm,
		"auth_data": map[string]any{"public_key": "pk1b"}, "version": v1})
	if got := alice.ok(t, "GET", v3+"/room_keys/version/"+v1, nil); got.Get("auth_data.public_key").Str != "pk1b" {
		t.Fatalf("updated: %s", got.Raw)
	}
	alice.fails(t, 400, "M_INVALID_PARAM", "PUT", v3+"/room_keys/version/"+v1, map[string]any{"algorithm": "other", "auth_data": map[string]any{}})
	alice.fails(t, 400, "M_INVALID_PARAM", "PUT", v3+"/room_keys/version/"+v1, map[string]any{"algorithm": backupAlgorithm, "auth_data": map[string]any{}, "version": v2})
	alice.fails(t, 404, "M_NOT_FOUND", "PUT", v3+"/room_keys/version/99", map[string]any{"algorithm": backupAlgorithm, "auth_data": map[string]any{}})
	alice.fails(t, 400, "M_MISSING_PARAM", "POST", v3+"/room_keys/version", map[string]any{"auth_data": map[string]any{}})
	alice.fails(t, 400, "M_BAD_JSON", "POST", v3+"/room_keys/version", map[string]any{"algorithm": backupAlgorithm, "auth_data": "x"})

	// Delete: the latest becomes the one before; deleting again succeeds;
	// an unknown version is 404.
	alice.ok(t, "DELETE", v3+"/room_keys/version/"+v2, nil)
	if got := alice.ok(t, "GET", v3+"/room_keys/version", nil); got.Get("version").Str != v1 {
		t.Fatalf("latest after deleting %s: %s", v2, got.Raw)
	}
	alice.ok(t, "DELETE", v3+"/room_keys/version/"+v2, nil)
	alice.fails(t, 404, "M_NOT_FOUND", "GET", v3+"/room_keys/version/"+v2, nil)
	alice.fails(t, 404, "M_NOT_FOUND", "DELETE", v3+"/room_keys/version/99", nil)
	bob.fails(t, 404, "M_NOT_FOUND", "DELETE", v3+"/room_keys/version/"+v1, nil)
	// A new version is numbered after the deleted one.
	v3v := alice.ok(t, "POST", v3+"/room_keys/version", map[string]any{"algorithm": backupAlgorithm, "auth_data": map[string]any{}}).Get("version").Str
	if v3v == v1 || v3v == v2 {
		t.Fatalf("a new version reused the number %s", v3v)
	}
}

// TestKeyBackupKeys: keys for all rooms, one room and one session, with
// etag and count; the spec's rule for replacing a session's key;
// M_WRONG_ROOM_KEYS_VERSION for an old version.
func TestKeyBackupKeys(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	v := alice.ok(t, "POST", v3+"/room_keys/version", map[string]any{"algorithm": backupAlgorithm, "auth_data": map[string]any{}}).Get("version").Str
	const roomA, roomB = "!a:example.org", "!b:example.org"
	keysPath := func(parts ...string) string {
		p := v3 + "/room_keys/keys"
		for _, part := range parts {
			p += "/" + url.PathEscape(part)
		}
		return p + "?version=" + v
	}
	res := alice.ok(t, "PUT", keysPath(), map[string]any{"rooms": map[string]any{
		roomA: map[string]any{"sessions": map[string]any{"s1": backupKey(5, 1, false, "first"), "s2": backupKey(0, 0, true, "s2")}},
	}})
	if res.Get("count").Int() != 2 || res.Get("etag").Str == "" {
		t.Fatalf("after the first upload: %s", res.Raw)
	}
	etag := res.Get("etag").Str
	res = alice.ok(t, "PUT", keysPath(roomB), map[string]any{"sessions": map[string]any{"s3": backupKey(0, 0, false, "s3")}})
	if res.Get("count").Int() != 3 || res.Get("etag").Str == etag {
		t.Fatalf("after the room upload: %s (etag was %s)", res.Raw, etag)
	}
	etag = res.Get("etag").Str

	current := func() gjson.Result { return alice.ok(t, "GET", keysPath(roomA, "s1"), nil) }
	for _, c := range []struct {
		what     string
		key      map[string]any
		replaces bool
	}{
		{"a later first_message_index", backupKey(6, 0, false, "later"), false},
		{"an earlier first_message_index", backupKey(3, 2, false, "earlier"), true},
		{"verified, though later", backupKey(9, 9, true, "verified"), true},
		{"unverified, though earliest", backupKey(0, 0, false, "unverified"), false},
		{"verified, earlier", backupKey(4, 9, true, "verified earlier"), true},
		{"verified, same index, fewer forwards", backupKey(4, 1, true, "fewer forwards"), true},
		{"the same on every count", backupKey(4, 1, true, "a tie"), false},
	} {
		before := current().Get("session_data.ciphertext").Str
		res := alice.ok(t, "PUT", keysPath(roomA, "s1"), c.key)
		after := current()
		want := before
		if c.replaces {
			want = c.key["session_data"].(map[string]any)["ciphertext"].(string)
		}
		if after.Get("session_data.ciphertext").Str != want {
			t.Fatalf("%s: the stored key is %s, want %q", c.what, after.Raw, want)
		}
		if changed := res.Get("etag").Str != etag; changed != c.replaces || res.Get("count").Int() != 3 {
			t.Fatalf("%s: etag %s (was %s), count %d", c.what, res.Get("etag").Str, etag, res.Get("count").Int())
		}
		etag = res.Get("etag").Str
	}

	all := alice.ok(t, "GET", keysPath(), nil)
	if len(all.Get("rooms").Map()) != 2 || len(all.Get("rooms."+esc(roomA)+".sessions").Map()) != 2 ||
		all.Get("rooms."+esc(roomB)+".sessions.s3.first_message_index").Int() != 0 {
		t.Fatalf("all keys: %s", all.Raw)
	}
	if got := alice.ok(t, "GET", keysPath(roomB), nil); got.Get("sessions.s3.is_verified").Bool() || !got.Get("sessions.s3").Exists() {
		t.Fatalf("room keys: %s", got.Raw)
	}
	if got := alice.ok(t, "GET", keysPath("!none:example.org"), nil); got.Get("sessions").Raw != "{}" || len(got.Map()) != 1 {
		t.Fatalf("an unknown room: %s", got.Raw)
	}
	alice.fails(t, 404, "M_NOT_FOUND", "GET", keysPath(roomA, "nope"), nil)

	// Deletes, per session, room and all.
	res = alice.ok(t, "DELETE", keysPath(roomA, "s2"), nil)
	if res.Get("count").Int() != 2 {
		t.Fatalf("after deleting a session: %s", res.Raw)
	}
	res = alice.ok(t, "DELETE", keysPath(roomB), nil)
	if res.Get("count").Int() != 1 {
		t.Fatalf("after deleting a room: %s", res.Raw)
	}
	res = alice.ok(t, "DELETE", keysPath(), nil)
	if res.Get("count").Int() != 0 || alice.ok(t, "GET", keysPath(), nil).Get("rooms").Raw != "{}" {
		t.Fatalf("after deleting all: %s", res.Raw)
	}

	// Only the current version takes keys.
	v2 := alice.ok(t, "POST", v3+"/room_keys/version", map[string]any{"algorithm": backupAlgorithm, "auth_data": map[string]any{}}).Get("version").Str
	wrong := alice.fails(t, http.StatusForbidden, "M_WRONG_ROOM_KEYS_VERSION", "PUT", keysPath(roomA, "s1"), backupKey(0, 0, false, "x"))
	if wrong.Get("current_version").Str != v2 {
		t.Fatalf("current_version: %s", wrong.Raw)
	}
	alice.fails(t, http.StatusForbidden, "M_WRONG_ROOM_KEYS_VERSION", "PUT", v3+"/room_keys/keys/r/s?version=junk", backupKey(0, 0, false, "x"))

	// Bad input: nothing stored.
	v = v2
	for _, c := range []struct {
		path   string
		body   any
		status int
		code   string
	}{
		{v3 + "/room_keys/keys/r/s", backupKey(0, 0, false, "x"), 400, "M_MISSING_PARAM"},
		{keysPath("r", "s"), map[string]any{"first_message_index": 0, "forwarded_count": 0, "session_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{keysPath("r", "s"), map[string]any{"first_message_index": "0", "forwarded_count": 0, "is_verified": false, "session_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{keysPath("r", "s"), map[string]any{"first_message_index": -1, "forwarded_count": 0, "is_verified": false, "session_data": map[string]any{}}, 400, "M_INVALID_PARAM"},
		{keysPath("r", "s"), map[string]any{"first_message_index": 0, "forwarded_count": 0, "is_verified": false, "session_data": "x"}, 400, "M_BAD_JSON"},
		{keysPath(), map[string]any{"rooms": map[string]any{"r": map[string]any{"sessions": map[string]any{
			"good": backupKey(0, 0, false, "g"), "bad": map[string]any{"session_data": map[string]any{}}}}}}, 400, "M_BAD_JSON"},
	} {
		alice.fails(t, c.status, c.code, "PUT", c.path, c.body)
	}
	if got := alice.ok(t, "GET", v3+"/room_keys/version", nil); got.Get("count").Int() != 0 {
		t.Fatalf("refused uploads stored keys: %s", got.Raw)
	}
	alice.fails(t, 400, "M_MISSING_PARAM", "GET", v3+"/room_keys/keys", nil)
	alice.fails(t, 404, "M_NOT_FOUND", "GET", v3+"/room_keys/keys?version=99", nil)
}
