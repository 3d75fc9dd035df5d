package federation_test

// End-to-end encryption between two servers: to-device messages
// (m.direct_to_device), device list updates (m.device_list_update, with
// prev_id gaps resynced through /user/devices) and cross-signing key
// updates (m.signing_key_update), and /keys/query answered from the cache.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/storage"
)

// newKeyHolderFromToken is the key holder of the device token belongs to.
func newKeyHolderFromToken(t *testing.T, s *servertest.Server, token string) *keyHolder {
	t.Helper()
	var who struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
	}
	s.DoJSON(t, http.MethodGet, "/_matrix/client/v3/account/whoami", token, nil, &who)
	return newKeyHolderWithDevice(s, who.UserID, token, who.DeviceID)
}

func newKeyHolderWithDevice(s *servertest.Server, id, token, dev string) *keyHolder {
	return &keyHolder{s: s, id: id, token: token, dev: dev, priv: genKey()}
}

func genKey() ed25519.PrivateKey {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return priv
}

// e2eeSync follows a user's /sync for to-device messages and device lists.
type e2eeSync struct {
	s            *servertest.Server
	token, since string
}

type e2eeSyncResponse struct {
	NextBatch string `json:"next_batch"`
	ToDevice  struct {
		Events []struct {
			Sender  string          `json:"sender"`
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		} `json:"events"`
	} `json:"to_device"`
	DeviceLists struct {
		Changed []string `json:"changed"`
	} `json:"device_lists"`
}

func (es *e2eeSync) poll(t *testing.T, timeout time.Duration) *e2eeSyncResponse {
	t.Helper()
	q := url.Values{"timeout": {fmt.Sprint(timeout.Milliseconds())}, "set_presence": {"offline"}}
	if es.since != "" {
		q.Set("since", es.since)
	}
	var resp e2eeSyncResponse
	es.s.DoJSON(t, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), es.token, nil, &resp)
	es.since = resp.NextBatch
	return &resp
}

func newE2EESync(t *testing.T, s *servertest.Server, token string) *e2eeSync {
	es := &e2eeSync{s: s, token: token}
	es.poll(t, 0)
	return es
}

// remoteList returns B's cached device list state of userID (nil: none).
func remoteList(t *testing.T, s *servertest.Server, userID string) *storage.RemoteDeviceList {
	t.Helper()
	var l *storage.RemoteDeviceList
	err := s.DB().WithTx(ctxT(t), func(tx *storage.Tx) error {
		var err error
		l, err = tx.RemoteDeviceList(ctxT(t), userID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// cachedDevices returns the device IDs s caches for userID.
func cachedDevices(t *testing.T, s *servertest.Server, userID string) []string {
	t.Helper()
	keys, err := s.DB().DeviceKeysOfUsers(ctxT(t), []string{userID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.DeviceID)
	}
	return out
}

// waitCached waits until s holds userID's device list, complete, with
// exactly the devices want, at A's stream_id.
func waitCached(t *testing.T, a, s *servertest.Server, userID string, want ...string) {
	t.Helper()
	slices.Sort(want)
	eventually(t, fmt.Sprintf("%s's devices %v cached", userID, want), func() bool {
		l := remoteList(t, s, userID)
		streamID, err := a.DB().DeviceListStreamID(ctxT(t), userID)
		if err != nil {
			t.Fatal(err)
		}
		return l != nil && !l.Stale && l.StreamID == streamID && slices.Equal(cachedDevices(t, s, userID), want)
	})
}

// A to-device message from a user of A reaches a user of B once: a
// retried /sendToDevice is not sent again, and an EDU that A sends again
// (same message_id) is delivered once. An EDU whose sender is not A's user
// is ignored.
func TestToDeviceAcrossServers(t *testing.T) {
	ro := newRoomOnA(t)
	alice := newKeyHolder(t, ro.a, "alicetd")
	bob := newKeyHolder(t, ro.b, "bobtd")
	bobSync := newE2EESync(t, ro.b, bob.token)
	body := map[string]any{"messages": map[string]any{bob.id: map[string]any{bob.dev: map[string]any{"n": 1}}}}
	for range 2 { // the second is a client's retry: same transaction ID
		ro.a.DoJSON(t, http.MethodPut, "/_matrix/client/v3/sendToDevice/m.test/once", alice.token, body, nil)
	}
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(got) == 0 {
		for _, ev := range bobSync.poll(t, 2*time.Second).ToDevice.Events {
			got = append(got, ev.Sender+" "+ev.Type+" "+string(ev.Content))
		}
	}
	want := []string{alice.id + ` m.test {"n":1}`}
	if !slices.Equal(got, want) {
		t.Fatalf("bob got %v, want %v", got, want)
	}

	// A sends the same EDU twice, then one from B's user.
	once := edu("m.direct_to_device", map[string]any{"sender": alice.id, "type": "m.test", "message_id": "fixed-id",
		"messages": map[string]any{bob.id: map[string]any{"*": map[string]any{"n": 2}}}})
	forged := edu("m.direct_to_device", map[string]any{"sender": "@mallory:" + ro.b.Name, "type": "m.test", "message_id": "forged",
		"messages": map[string]any{bob.id: map[string]any{"*": map[string]any{"n": 3}}}})
	ro.eduTxn(t, once, forged)
	ro.eduTxn(t, once)
	got = nil
	for range 3 {
		for _, ev := range bobSync.poll(t, time.Second).ToDevice.Events {
			got = append(got, ev.Sender+" "+string(ev.Content))
		}
	}
	if want := []string{alice.id + ` {"n":2}`}; !slices.Equal(got, want) {
		t.Fatalf("bob got %v, want %v", got, want)
	}
}

// A user of A changes devices and keys: B, which shares a room with them,
// hears of it (device_lists.changed in its user's /sync), caches the list
// from the updates, answers /keys/query from the cache (A may be down), and
// forgets a deleted device.
func TestDeviceListUpdatesAcrossServers(t *testing.T) {
	ro, _, bobToken := sharedRoom(t)
	alice := newKeyHolderFromToken(t, ro.a, ro.token)
	bob := newKeyHolderFromToken(t, ro.b, bobToken)
	bobSync := newE2EESync(t, ro.b, bobToken)
	changed := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if slices.Contains(bobSync.poll(t, 2*time.Second).DeviceLists.Changed, alice.id) {
				return
			}
		}
		t.Fatalf("%s: alice not in bob's device_lists.changed", what)
	}

	alice.uploadKeys(t, 1)
	changed("alice's first keys")
	waitCached(t, ro.a, ro.b, alice.id, alice.dev)

	// A second device: an update that follows the last one.
	token2, dev2 := ro.a.Login(t, alice.id)
	alice2 := newKeyHolderWithDevice(ro.a, alice.id, token2, dev2)
	alice2.uploadKeys(t, 1)
	changed("alice's second device")
	waitCached(t, ro.a, ro.b, alice.id, alice.dev, dev2)

	// Cross-signing keys: m.signing_key_update.
	alice.crossSign(t)
	changed("alice's cross-signing keys")
	eventually(t, "alice's master key cached on B", func() bool {
		ks, err := ro.b.DB().CrossSigningKeysOfUsers(ctxT(t), []string{alice.id})
		return err == nil && ks[alice.id][storage.MasterKey].PublicKey != "" && ks[alice.id][storage.SelfSigningKey].PublicKey != ""
	})

	// The second device logs out: deleted.
	ro.a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/logout", token2, map[string]any{}, nil)
	changed("alice's deleted device")
	waitCached(t, ro.a, ro.b, alice.id, alice.dev)

	// With A down, bob's query is answered from B's cache.
	if err := ro.a.Stop(); err != nil {
		t.Fatal(err)
	}
	q := bob.post(t, "/keys/query", map[string]any{"timeout": 2000, "device_keys": map[string][]string{alice.id: {}}})
	devs := q.Get("device_keys." + esc(alice.id)).Map()
	if len(devs) != 1 || !devs[alice.dev].Exists() || devs[alice.dev].Get("keys."+esc("ed25519:"+alice.dev)).Str != b64(alice.priv) ||
		!q.Get("master_keys."+esc(alice.id)).Exists() || !q.Get("self_signing_keys."+esc(alice.id)).Exists() ||
		len(q.Get("failures").Map()) != 0 {
		t.Fatalf("bob's query with A down: %s", q.Raw)
	}
}

// An update that follows the last one applied is applied as it is; one
// whose prev_id is unknown makes B fetch the whole list again from A
// (GET /user/devices), which replaces what B cached. Once no room is
// shared, the cached list is stale.
func TestDeviceListGapResyncs(t *testing.T) {
	ro, _, bobToken := sharedRoom(t)
	alice := newKeyHolderFromToken(t, ro.a, ro.token)
	bob := newKeyHolderFromToken(t, ro.b, bobToken)
	alice.uploadKeys(t, 1)
	waitCached(t, ro.a, ro.b, alice.id, alice.dev)
	streamID := remoteList(t, ro.b, alice.id).StreamID

	fakeKeys := func(dev string) json.RawMessage {
		priv := genKey()
		return signedBy(t, map[string]any{"user_id": alice.id, "device_id": dev, "algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
			"keys": map[string]string{"ed25519:" + dev: b64(priv), "curve25519:" + dev: randKey()}}, alice.id, "ed25519:"+dev, priv)
	}
	update := func(dev string, id int64, prev ...int64) map[string]any {
		return edu("m.device_list_update", map[string]any{"user_id": alice.id, "device_id": dev,
			"stream_id": id, "prev_id": prev, "keys": fakeKeys(dev)})
	}
	// In sequence: applied, no fetch (A knows no such device).
	ro.eduTxn(t, update("NEXT", streamID+1, streamID))
	eventually(t, "the update applied", func() bool {
		l := remoteList(t, ro.b, alice.id)
		return l.StreamID == streamID+1 && !l.Stale && slices.Equal(cachedDevices(t, ro.b, alice.id), sorted(alice.dev, "NEXT"))
	})
	q := bob.post(t, "/keys/query", map[string]any{"device_keys": map[string][]string{alice.id: {}}})
	if !q.Get("device_keys." + esc(alice.id) + ".NEXT").Exists() {
		t.Fatalf("the applied update is not in the query's answer: %s", q.Raw)
	}
	// A gap: B fetches the list from A, which has neither fake device.
	ro.eduTxn(t, update("GAP", streamID+10, streamID+9))
	waitCached(t, ro.a, ro.b, alice.id, alice.dev)
	// An update of a user B shares no room with, or of B's own user, is
	// ignored.
	ro.eduTxn(t, edu("m.device_list_update", map[string]any{"user_id": "@carol:" + ro.a.Name, "device_id": "C", "stream_id": 5}))
	ro.eduTxn(t, edu("m.device_list_update", map[string]any{"user_id": bob.id, "device_id": "B", "stream_id": 5}))
	if l := remoteList(t, ro.b, "@carol:"+ro.a.Name); l != nil {
		t.Fatalf("carol's list is tracked: %+v", l)
	}
	if got := cachedDevices(t, ro.b, bob.id); len(got) != 0 {
		t.Fatalf("bob's devices on B (he uploaded no keys): %v", got)
	}

	// bob leaves: B no longer shares a room with alice, so A stops sending
	// her updates, and B stops trusting what it cached.
	ro.b.DoJSON(t, http.MethodPost, roomPath(ro.roomID, "/leave"), bobToken, map[string]any{}, nil)
	eventually(t, "alice's list stale on B after bob left", func() bool { return remoteList(t, ro.b, alice.id).Stale })
}

func sorted(s ...string) []string { slices.Sort(s); return s }
