package clientapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestKeysUploadQueryClaim: uploaded device keys come back from /keys/query
// as uploaded (with the device's name), one-time keys are claimed once
// each in upload order, then the fallback key is handed out and reported
// used.
func TestKeysUploadQueryClaim(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	alice.ok(t, "PUT", v3+"/devices/"+alice.deviceID, map[string]any{"display_name": "Alice's laptop"})

	dk := alice.deviceKeys(t)
	first := alice.oneTimeKeys(t, 2)
	counts := alice.upload(t, map[string]any{"device_keys": dk, "one_time_keys": first})
	if counts.Get("signed_curve25519").Int() != 2 {
		t.Fatalf("counts after the first upload: %s", counts.Raw)
	}
	second := alice.oneTimeKeys(t, 1)
	fb := alice.fallbackKey(t)
	counts = alice.upload(t, map[string]any{"one_time_keys": second, "fallback_keys": fb})
	if counts.Get("signed_curve25519").Int() != 3 {
		t.Fatalf("counts after the second upload: %s", counts.Raw)
	}

	q := bob.query(t, alice.id)
	got := q.Get("device_keys." + esc(alice.id) + "." + alice.deviceID)
	if !got.Exists() || q.Get("failures").Raw != "{}" {
		t.Fatalf("query: %s", q.Raw)
	}
	if got.Get("unsigned.device_display_name").Str != "Alice's laptop" {
		t.Fatalf("no device name in %s", got.Raw)
	}
	var uploaded, returned map[string]any
	_ = json.Unmarshal(dk, &uploaded)
	_ = json.Unmarshal([]byte(got.Raw), &returned)
	delete(returned, "unsigned")
	if fmt.Sprint(uploaded) != fmt.Sprint(returned) {
		t.Fatalf("queried keys %v differ from uploaded %v", returned, uploaded)
	}
	// A device list restricts the answer; an unknown device is absent.
	q = bob.ok(t, "POST", v3+"/keys/query", map[string]any{"device_keys": map[string][]string{alice.id: {"NOPE"}}})
	if n := len(q.Get("device_keys." + esc(alice.id)).Map()); n != 0 {
		t.Fatalf("a query for an unknown device returned %s", q.Raw)
	}

	// Claims: the first upload's keys before the second's, each once.
	var claimed []string
	for range 3 {
		res := bob.claim(t, map[string][]string{alice.id: {alice.deviceID}})
		keys := res.Get("one_time_keys." + esc(alice.id) + "." + alice.deviceID).Map()
		if len(keys) != 1 {
			t.Fatalf("claim: %s", res.Raw)
		}
		for name := range keys {
			claimed = append(claimed, name)
		}
	}
	firstNames := slices.Sorted(maps.Keys(first))
	if !slices.Contains(firstNames, claimed[0]) || !slices.Contains(firstNames, claimed[1]) || claimed[2] != firstKey(second) {
		t.Fatalf("claimed %v; want the first upload's %v before the second's %v", claimed, firstNames, slices.Collect(maps.Keys(second)))
	}
	if claimed[0] == claimed[1] {
		t.Fatalf("a key was claimed twice: %v", claimed)
	}
	// Then the fallback key, as often as asked.
	fbName := firstKey(fb)
	for range 2 {
		res := bob.claim(t, map[string][]string{alice.id: {alice.deviceID}})
		if !res.Get("one_time_keys." + esc(alice.id) + "." + alice.deviceID + "." + esc(fbName)).Exists() {
			t.Fatalf("no fallback key in %s", res.Raw)
		}
	}
	sync := alice.syncFrom(t, "")
	if sync.Get("device_one_time_keys_count.signed_curve25519").Int() != 0 || sync.Get("device_unused_fallback_key_types").Raw != "[]" {
		t.Fatalf("sync after the fallback key was used: counts %s, unused fallback %s",
			sync.Get("device_one_time_keys_count").Raw, sync.Get("device_unused_fallback_key_types").Raw)
	}
	// Re-uploading the used fallback key keeps it used; a new one is unused.
	alice.upload(t, map[string]any{"fallback_keys": fb})
	if got := alice.syncFrom(t, "").Get("device_unused_fallback_key_types").Raw; got != "[]" {
		t.Fatalf("the same fallback key again looks unused: %s", got)
	}
	alice.upload(t, map[string]any{"fallback_keys": alice.fallbackKey(t)})
	if got := alice.syncFrom(t, "").Get("device_unused_fallback_key_types").Raw; got != `["signed_curve25519"]` {
		t.Fatalf("a new fallback key: unused types %s", got)
	}
	// A device with nothing left is absent from the claim's answer.
	res := bob.claim(t, map[string][]string{bob.id: {bob.deviceID}, "@nobody:" + s.Name: {"X"}})
	if res.Get("one_time_keys").Raw != "{}" || res.Get("failures").Raw != "{}" {
		t.Fatalf("claim of devices without keys: %s", res.Raw)
	}
}

// TestOneTimeKeyReupload: the same key uploaded again is accepted and not
// counted twice; another value under a stored key's ID is refused, and
// nothing of that upload is stored.
func TestOneTimeKeyReupload(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	keys := alice.oneTimeKeys(t, 2)
	alice.upload(t, map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": keys})
	if c := alice.upload(t, map[string]any{"one_time_keys": keys}); c.Get("signed_curve25519").Int() != 2 {
		t.Fatalf("counts after uploading the same keys again: %s", c.Raw)
	}
	// A fresh key, which must not be stored either, and another value under
	// a stored key's name.
	changed := alice.oneTimeKeys(t, 1)
	changed[firstKey(keys)] = signAs(t, map[string]any{"key": randomKey()}, alice.id, alice.keyID(), alice.priv)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "POST", v3+"/keys/upload", map[string]any{"one_time_keys": changed})
	if c := alice.upload(t, map[string]any{}); c.Get("signed_curve25519").Int() != 2 {
		t.Fatalf("a refused upload stored keys: %s", c.Raw)
	}
}

// TestKeysUploadBadInput: keys that are not the device's, malformed keys
// and signatures that do not verify get the spec's errors, and nothing of
// the request is stored.
func TestKeysUploadBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	good := func() map[string]any {
		var m map[string]any
		_ = json.Unmarshal(alice.deviceKeys(t), &m)
		return m
	}
	resign := func(m map[string]any) json.RawMessage {
		delete(m, "signatures")
		return signAs(t, m, alice.id, alice.keyID(), alice.priv)
	}
	otherUser := good()
	otherUser["user_id"] = bob.id
	otherDevice := good()
	otherDevice["device_id"] = "OTHER"
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	unsigned := good()
	delete(unsigned, "signatures")
	shortKey := good()
	shortKey["keys"] = map[string]string{"ed25519:" + alice.deviceID: "AAAA"}
	wrongKeyName := good()
	wrongKeyName["keys"].(map[string]any)["curve25519:OTHER"] = randomKey()
	missing := good()
	delete(missing, "algorithms")
	badOTK := map[string]json.RawMessage{"signed_curve25519:BAD": signAs(t, map[string]any{"key": randomKey()}, alice.id, alice.keyID(), strangerKey)}
	tooMany := alice.oneTimeKeys(t, 1001)
	twoFallbacks := alice.fallbackKey(t)
	for k, v := range alice.fallbackKey(t) {
		twoFallbacks[k] = v
	}

	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"another user's keys", map[string]any{"device_keys": resign(otherUser)}, 400, "M_INVALID_PARAM"},
		{"another device's keys", map[string]any{"device_keys": resign(otherDevice)}, 400, "M_INVALID_PARAM"},
		{"signed by another key", map[string]any{"device_keys": signAs(t, unsigned, alice.id, alice.keyID(), strangerKey)}, 400, "M_INVALID_SIGNATURE"},
		{"without signatures", map[string]any{"device_keys": unsigned}, 400, "M_BAD_JSON"},
		{"with no signature of the device", map[string]any{"device_keys": func() any {
			m := good()
			m["signatures"] = map[string]any{alice.id: map[string]string{}}
			return m
		}()}, 400, "M_INVALID_SIGNATURE"},
		{"changed after signing", map[string]any{"device_keys": func() any {
			m := map[string]any{}
			_ = json.Unmarshal(alice.deviceKeys(t), &m)
			m["algorithms"] = []string{"m.megolm.v1.aes-sha2"}
			return m
		}()}, 400, "M_INVALID_SIGNATURE"},
		{"a short ed25519 key", map[string]any{"device_keys": resign(shortKey)}, 400, "M_INVALID_PARAM"},
		{"a key named for another device", map[string]any{"device_keys": resign(wrongKeyName)}, 400, "M_INVALID_PARAM"},
		{"no algorithms", map[string]any{"device_keys": resign(missing)}, 400, "M_BAD_JSON"},
		{"device_keys a string", map[string]any{"device_keys": "keys"}, 400, "M_BAD_JSON"},
		{"keys of the wrong type", map[string]any{"device_keys": map[string]any{"user_id": alice.id, "device_id": alice.deviceID, "algorithms": []string{}, "keys": []string{}, "signatures": map[string]any{}}}, 400, "M_BAD_JSON"},
		{"a one-time key signed by another key", map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": badOTK}, 400, "M_INVALID_SIGNATURE"},
		{"a one-time key without a key ID", map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": map[string]any{"signed_curve25519": "x"}}, 400, "M_INVALID_PARAM"},
		{"a one-time key that is a number", map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": map[string]any{"curve25519:A": 5}}, 400, "M_BAD_JSON"},
		{"a signed one-time key without signatures", map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": map[string]any{"signed_curve25519:A": map[string]any{"key": "k"}}}, 400, "M_BAD_JSON"},
		{"signed one-time keys before any device keys", map[string]any{"one_time_keys": alice.oneTimeKeys(t, 1)}, 400, "M_INVALID_PARAM"},
		{"1001 one-time keys", map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": tooMany}, 400, "M_INVALID_PARAM"},
		{"two fallback keys of one algorithm", map[string]any{"device_keys": alice.deviceKeys(t), "fallback_keys": twoFallbacks}, 400, "M_INVALID_PARAM"},
		{"one_time_keys a list", map[string]any{"one_time_keys": []string{}}, 400, "M_BAD_JSON"},
		{"a body that is not an object", "[]", 400, "M_BAD_JSON"},
		{"a body that is not JSON", "{", 400, "M_NOT_JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice.fails(t, c.status, c.code, "POST", v3+"/keys/upload", c.body)
		})
	}
	// Nothing was stored.
	q := bob.query(t, alice.id)
	if n := len(q.Get("device_keys." + esc(alice.id)).Map()); n != 0 {
		t.Fatalf("refused uploads stored device keys: %s", q.Raw)
	}
	if c := alice.syncFrom(t, "").Get("device_one_time_keys_count"); c.Get("signed_curve25519").Int() != 0 || len(c.Map()) != 1 {
		t.Fatalf("refused uploads stored one-time keys: %s", c.Raw)
	}
}

// TestKeysQueryAndClaimBadInput: requests of the wrong shape and oversized
// batches are refused.
func TestKeysQueryAndClaimBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	many := map[string][]string{}
	for i := range 10001 {
		many[fmt.Sprintf("@u%d:%s", i, s.Name)] = nil
	}
	for _, c := range []struct {
		path   string
		body   any
		status int
		code   string
	}{
		{"/keys/query", map[string]any{}, 400, "M_MISSING_PARAM"},
		{"/keys/query", map[string]any{"device_keys": []string{"@a:b"}}, 400, "M_BAD_JSON"},
		{"/keys/query", map[string]any{"device_keys": map[string]any{"@a:b": "DEV"}}, 400, "M_BAD_JSON"},
		{"/keys/query", map[string]any{"device_keys": map[string]any{"not a user": []string{}}}, 400, "M_INVALID_PARAM"},
		{"/keys/query", map[string]any{"device_keys": many}, 400, "M_INVALID_PARAM"},
		{"/keys/claim", map[string]any{}, 400, "M_MISSING_PARAM"},
		{"/keys/claim", map[string]any{"one_time_keys": map[string]any{"@a:b": []string{"DEV"}}}, 400, "M_BAD_JSON"},
		{"/keys/claim", map[string]any{"one_time_keys": map[string]any{alice.id: map[string]string{"DEV": ""}}}, 400, "M_INVALID_PARAM"},
	} {
		alice.fails(t, c.status, c.code, "POST", v3+c.path, c.body)
	}
}

// TestConcurrentClaimsOfTheLastKeys: many claimers racing for a device's
// last one-time keys each get a different key or, once they are gone,
// nothing; no key is handed out twice. (Run with MYELIN_TEST_POSTGRES set
// for PostgreSQL; storage's TestClaimKeysConcurrently covers both in one
// run.)
func TestConcurrentClaimsOfTheLastKeys(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	const claimers = 24
	var devices []*cryptoDevice
	for i := range claimers {
		devices = append(devices, newCryptoUser(t, s, fmt.Sprintf("claimer%d", i)))
	}
	for round, keys := range []int{1, 5} {
		alice.upload(t, map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": alice.oneTimeKeys(t, keys)})
		var (
			mu  sync.Mutex
			got []string
			wg  sync.WaitGroup
		)
		start := make(chan struct{})
		for _, c := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res := c.claim(t, map[string][]string{alice.id: {alice.deviceID}})
				for name := range res.Get("one_time_keys." + esc(alice.id) + "." + alice.deviceID).Map() {
					mu.Lock()
					got = append(got, name)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		slices.Sort(got)
		if len(got) != keys || len(slices.Compact(slices.Clone(got))) != keys {
			t.Fatalf("round %d: %d claimers of %d keys got %v: each key must go to exactly one", round, claimers, keys, got)
		}
	}
}

// TestKeysChanges: /keys/changes lists the users sharing a room who
// changed their keys between two tokens, and those who stopped sharing one.
func TestKeysChanges(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	carol := newCryptoUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", v3+"/join/"+roomID, map[string]any{})
	from := bob.syncFrom(t, "").Get("next_batch").Str

	alice.uploadAll(t, 1)
	carol.uploadAll(t, 1) // shares no room with bob
	to := bob.syncFrom(t, from).Get("next_batch").Str
	res := bob.ok(t, "GET", v3+"/keys/changes?from="+from+"&to="+to, nil)
	if got := jsonOf(t, res.Get("changed")); fmt.Sprint(got) != fmt.Sprint([]any{alice.id}) || res.Get("left").Raw != "[]" {
		t.Fatalf("changes: %s; want alice changed", res.Raw)
	}
	// Nothing between to and to; a missing "to" means now.
	if res := bob.ok(t, "GET", v3+"/keys/changes?from="+to+"&to="+to, nil); res.Get("changed").Raw != "[]" {
		t.Fatalf("changes in an empty window: %s", res.Raw)
	}
	alice.ok(t, "POST", room(roomID)+"/leave", map[string]any{})
	res = bob.ok(t, "GET", v3+"/keys/changes?from="+to, nil)
	if fmt.Sprint(jsonOf(t, res.Get("left"))) != fmt.Sprint([]any{alice.id}) {
		t.Fatalf("after alice left: %s", res.Raw)
	}
	bob.fails(t, 400, "M_MISSING_PARAM", "GET", v3+"/keys/changes", nil)
	bob.fails(t, 400, "M_INVALID_PARAM", "GET", v3+"/keys/changes?from=nonsense", nil)
}

// esc escapes a map key for a gjson path.
func esc(k string) string {
	r := strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`, "@", `\@`, ":", `\:`)
	return r.Replace(k)
}

func firstKey(m map[string]json.RawMessage) string {
	for k := range m {
		return k
	}
	return ""
}
