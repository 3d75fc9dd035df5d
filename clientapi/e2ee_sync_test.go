package clientapi_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// deviceListsOf returns device_lists.changed and .left of a sync response.
func deviceListsOf(res gjson.Result) (changed, left []string) {
	for _, u := range res.Get("device_lists.changed").Array() {
		changed = append(changed, u.Str)
	}
	for _, u := range res.Get("device_lists.left").Array() {
		left = append(left, u.Str)
	}
	return changed, left
}

// syncer follows one device's incremental syncs.
type syncer struct {
	d     *cryptoDevice
	since string
}

func newSyncer(t *testing.T, d *cryptoDevice) *syncer {
	t.Helper()
	res := d.syncFrom(t, "")
	if res.Get("device_lists").Exists() {
		t.Fatalf("an initial sync has device_lists: %s", res.Get("device_lists").Raw)
	}
	return &syncer{d: d, since: res.Get("next_batch").Str}
}

// next syncs once and returns the device list changes.
func (sy *syncer) next(t *testing.T) (changed, left []string) {
	t.Helper()
	res := sy.d.syncFrom(t, sy.since)
	sy.since = res.Get("next_batch").Str
	if !res.Get("device_one_time_keys_count").IsObject() || !res.Get("device_unused_fallback_key_types").IsArray() {
		t.Fatalf("a sync lacks the key counts: %s", res.Raw)
	}
	return deviceListsOf(res)
}

func (sy *syncer) want(t *testing.T, what string, changed, left []string) {
	t.Helper()
	c, l := sy.next(t)
	if !slices.Equal(c, changed) || !slices.Equal(l, left) {
		t.Fatalf("%s: device_lists changed %v left %v; want changed %v left %v", what, c, l, changed, left)
	}
}

// TestSyncDeviceLists: a user's sync names in device_lists.changed the
// users sharing a room who add, re-key or delete a device or upload
// cross-signing keys, and who newly share a room; in left those who no
// longer share any.
func TestSyncDeviceLists(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	carol := newCryptoUser(t, s, "carol")
	dave := newCryptoUser(t, s, "dave") // shares no room with bob
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", v3+"/join/"+roomID, map[string]any{})
	sy := newSyncer(t, bob)

	sy.want(t, "nothing happened", nil, nil)
	alice.uploadAll(t, 5)
	dave.uploadAll(t, 5)
	sy.want(t, "alice uploaded her device keys", []string{alice.id}, nil)
	alice.upload(t, map[string]any{"one_time_keys": alice.oneTimeKeys(t, 5)})
	sy.want(t, "alice uploaded only one-time keys", nil, nil)
	alice.upload(t, map[string]any{"device_keys": alice.deviceKeys(t)})
	sy.want(t, "alice re-keyed her device", []string{alice.id}, nil)

	alice2 := alice.newLogin(t)
	alice2.uploadAll(t, 1)
	sy.want(t, "alice added a device", []string{alice.id}, nil)
	alice2.ok(t, "POST", v3+"/logout", map[string]any{})
	sy.want(t, "alice logged a device out", []string{alice.id}, nil)

	alice.ok(t, "POST", v3+"/keys/device_signing/upload", newCrossSigningKeys(t).upload(t, alice.id))
	sy.want(t, "alice uploaded cross-signing keys", []string{alice.id}, nil)

	bob2 := bob.newLogin(t)
	bob2.uploadAll(t, 1)
	sy.want(t, "bob's own new device", []string{bob.id}, nil)

	carol.ok(t, "POST", v3+"/join/"+roomID, map[string]any{})
	sy.want(t, "carol joined", []string{carol.id}, nil)
	carol.ok(t, "POST", room(roomID)+"/leave", map[string]any{})
	sy.want(t, "carol left", nil, []string{carol.id})

	// bob joins a room of dave's: dave is new to him.
	daveRoom := dave.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", v3+"/join/"+daveRoom, map[string]any{})
	sy.want(t, "bob joined dave's room", []string{dave.id}, nil)
	// bob leaves it: dave shares nothing with him any more, alice does.
	bob.ok(t, "POST", room(daveRoom)+"/leave", map[string]any{})
	sy.want(t, "bob left dave's room", nil, []string{dave.id})
	dave.upload(t, map[string]any{"device_keys": dave.deviceKeys(t)})
	sy.want(t, "dave re-keyed, sharing no room", nil, nil)
}

// TestDeviceListChangeWakesSync: a waiting /sync of a user who shares a
// room returns as soon as a device list changes.
func TestDeviceListChangeWakesSync(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", v3+"/join/"+roomID, map[string]any{})
	since := bob.syncFrom(t, "").Get("next_batch").Str
	done := make(chan gjson.Result, 1)
	go func() {
		status, raw := s.Do(t, "GET", v3+"/sync?timeout=20000&set_presence=offline&since="+since, bob.token, nil)
		if status != http.StatusOK {
			t.Errorf("sync: %d %s", status, raw)
		}
		done <- gjson.ParseBytes(raw)
	}()
	time.Sleep(300 * time.Millisecond)
	alice.uploadAll(t, 1)
	select {
	case res := <-done:
		if changed, _ := deviceListsOf(res); !slices.Equal(changed, []string{alice.id}) {
			t.Fatalf("woken sync: %s", res.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting sync was not woken by the key upload")
	}
}

// TestSyncKeyCounts: every sync carries the device's one-time key counts
// and unused fallback key algorithms.
func TestSyncKeyCounts(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	res := alice.syncFrom(t, "")
	if res.Get("device_one_time_keys_count").Raw != `{"signed_curve25519":0}` || res.Get("device_unused_fallback_key_types").Raw != "[]" {
		t.Fatalf("before any upload: %s %s", res.Get("device_one_time_keys_count").Raw, res.Get("device_unused_fallback_key_types").Raw)
	}
	alice.upload(t, map[string]any{"device_keys": alice.deviceKeys(t), "one_time_keys": alice.oneTimeKeys(t, 7),
		"fallback_keys": alice.fallbackKey(t)})
	res = alice.syncFrom(t, res.Get("next_batch").Str)
	if res.Get("device_one_time_keys_count.signed_curve25519").Int() != 7 || res.Get("device_unused_fallback_key_types").Raw != `["signed_curve25519"]` {
		t.Fatalf("after the upload: %s %s", res.Get("device_one_time_keys_count").Raw, res.Get("device_unused_fallback_key_types").Raw)
	}
	// Another device of the user has its own counts.
	other := alice.newLogin(t)
	if c := other.syncFrom(t, "").Get("device_one_time_keys_count.signed_curve25519").Int(); c != 0 {
		t.Fatalf("the other device's count: %d", c)
	}
}
