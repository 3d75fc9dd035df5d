package clientapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

const dehydratedPath = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"

// dehydrated returns a device of d's user that is not logged in, to upload
// as the dehydrated device id.
func (d *cryptoDevice) dehydrated(t *testing.T, id string) *cryptoDevice {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &cryptoDevice{user: d.user, deviceID: id, priv: priv}
}

func (dd *cryptoDevice) dehydrateBody(t *testing.T, data string) map[string]any {
	t.Helper()
	return map[string]any{
		"device_id":                   dd.deviceID,
		"device_data":                 map[string]any{"algorithm": "org.matrix.msc3814.v1.olm", "device_pickle": data},
		"initial_device_display_name": "Dehydrated device",
		"device_keys":                 dd.deviceKeys(t),
		"one_time_keys":               dd.oneTimeKeys(t, 2),
		"fallback_keys":               dd.fallbackKey(t),
	}
}

// TestDehydratedDevice: MSC3814. A user stores a dehydrated device with its
// keys; others see it and send it to-device messages, which a new login
// reads through /dehydrated_device/{id}/events in batches without deleting
// them; replacing or deleting the device takes it, its keys and messages.
func TestDehydratedDevice(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	alice.fails(t, 404, "M_NOT_FOUND", "GET", dehydratedPath, nil)

	dd := alice.dehydrated(t, "DEHYDRATED1")
	if id := alice.ok(t, "PUT", dehydratedPath, dd.dehydrateBody(t, "pickle1")).Get("device_id").Str; id != dd.deviceID {
		t.Fatalf("device_id %q", id)
	}
	got := alice.ok(t, "GET", dehydratedPath, nil)
	if got.Get("device_id").Str != dd.deviceID || got.Get("device_data.device_pickle").Str != "pickle1" {
		t.Fatalf("GET: %s", got.Raw)
	}
	if v := alice.ok(t, "GET", "/_matrix/client/versions", nil); !v.Get("unstable_features." + esc("org.matrix.msc3814")).Bool() {
		t.Fatalf("MSC3814 not advertised: %s", v.Raw)
	}
	// Others see it and can open an olm session with it.
	q := bob.query(t, alice.id)
	if !q.Get("device_keys."+esc(alice.id)+"."+dd.deviceID).Exists() ||
		q.Get("device_keys."+esc(alice.id)+"."+dd.deviceID+".unsigned.device_display_name").Str != "Dehydrated device" {
		t.Fatalf("bob's query: %s", q.Raw)
	}
	if c := bob.claim(t, map[string][]string{alice.id: {dd.deviceID}}); len(c.Get("one_time_keys."+esc(alice.id)+"."+dd.deviceID).Map()) != 1 {
		t.Fatalf("claim: %s", c.Raw)
	}
	for i := range 3 {
		bob.sendToDevice(t, "m.room.encrypted", "d"+string(rune('a'+i)), map[string]map[string]any{alice.id: {"*": map[string]any{"n": i}}})
	}

	// A new login reads the messages, twice over (nothing is deleted),
	// ending on an empty batch.
	newLogin := alice.newLogin(t)
	eventsPath := dehydratedPath + "/" + dd.deviceID + "/events"
	for range 2 {
		res := newLogin.ok(t, "POST", eventsPath, map[string]any{})
		var ns []int64
		for _, ev := range res.Get("events").Array() {
			if ev.Get("sender").Str != bob.id || ev.Get("type").Str != "m.room.encrypted" {
				t.Fatalf("event %s", ev.Raw)
			}
			ns = append(ns, ev.Get("content.n").Int())
		}
		if !slices.Equal(ns, []int64{0, 1, 2}) || res.Get("next_batch").Str == "" {
			t.Fatalf("events: %s", res.Raw)
		}
		last := newLogin.ok(t, "POST", eventsPath, map[string]any{"next_batch": res.Get("next_batch").Str})
		if len(last.Get("events").Array()) != 0 || last.Get("next_batch").Str == "" {
			t.Fatalf("the batch after the last: %s", last.Raw)
		}
	}
	newLogin.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", dehydratedPath+"/"+newLogin.deviceID+"/events", map[string]any{})
	bob.fails(t, 404, "M_NOT_FOUND", "POST", eventsPath, map[string]any{})

	// Replacing it deletes the old device, its keys and its messages.
	dd2 := alice.dehydrated(t, "DEHYDRATED2")
	alice.ok(t, "PUT", dehydratedPath, dd2.dehydrateBody(t, "pickle2"))
	devices := alice.ok(t, "GET", v3+"/devices", nil).Get("devices.#.device_id").Array()
	var ids []string
	for _, d := range devices {
		ids = append(ids, d.Str)
	}
	if slices.Contains(ids, dd.deviceID) || !slices.Contains(ids, dd2.deviceID) {
		t.Fatalf("devices after the replacement: %v", ids)
	}
	q = bob.query(t, alice.id)
	if q.Get("device_keys."+esc(alice.id)+"."+dd.deviceID).Exists() || !q.Get("device_keys."+esc(alice.id)+"."+dd2.deviceID).Exists() {
		t.Fatalf("keys after the replacement: %s", q.Raw)
	}
	newLogin.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", eventsPath, map[string]any{})
	if res := newLogin.ok(t, "POST", dehydratedPath+"/"+dd2.deviceID+"/events", nil); len(res.Get("events").Array()) != 0 {
		t.Fatalf("the new dehydrated device has the old one's messages: %s", res.Raw)
	}

	// Delete.
	if id := alice.ok(t, "DELETE", dehydratedPath, nil).Get("device_id").Str; id != dd2.deviceID {
		t.Fatalf("DELETE answered %q", id)
	}
	alice.fails(t, 404, "M_NOT_FOUND", "GET", dehydratedPath, nil)
	alice.fails(t, 404, "M_NOT_FOUND", "DELETE", dehydratedPath, nil)
	if q := bob.query(t, alice.id); q.Get("device_keys." + esc(alice.id) + "." + dd2.deviceID).Exists() {
		t.Fatalf("keys after the delete: %s", q.Raw)
	}
}

// TestDehydratedDeviceBadInput: a dehydrated device needs its ID, data and
// keys signed by itself, and cannot take a logged-in device's ID.
func TestDehydratedDeviceBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	dd := alice.dehydrated(t, "DEHYDRATED")
	without := func(field string) map[string]any {
		b := dd.dehydrateBody(t, "p")
		delete(b, field)
		return b
	}
	otherKeys := dd.dehydrateBody(t, "p")
	otherKeys["device_id"] = "ELSEWHERE"
	loggedIn := alice.dehydrated(t, alice.deviceID).dehydrateBody(t, "p")
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"no device_id", without("device_id"), 400, "M_MISSING_PARAM"},
		{"no device_data", without("device_data"), 400, "M_MISSING_PARAM"},
		{"no device_keys", without("device_keys"), 400, "M_MISSING_PARAM"},
		{"keys of another device", otherKeys, 400, "M_INVALID_PARAM"},
		{"a logged-in device's ID", loggedIn, 400, "M_INVALID_PARAM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice.fails(t, c.status, c.code, "PUT", dehydratedPath, c.body)
		})
	}
	alice.fails(t, 404, "M_NOT_FOUND", "GET", dehydratedPath, nil)
	if n := len(alice.ok(t, "GET", v3+"/devices", nil).Get("devices").Array()); n != 1 {
		t.Fatalf("refused uploads left %d devices", n)
	}
}
