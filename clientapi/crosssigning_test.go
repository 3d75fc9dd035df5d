package clientapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestCrossSigningUpload: the first upload needs no user-interactive auth,
// nor does a repeat of it; replacing keys does. Everyone sees a user's
// master and self-signing keys, only the user their user-signing key.
func TestCrossSigningUpload(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	keys := newCrossSigningKeys(t)
	body := keys.upload(t, alice.id)
	alice.ok(t, "POST", v3+"/keys/device_signing/upload", body)
	alice.ok(t, "POST", v3+"/keys/device_signing/upload", body) // a retry: same keys, no auth

	q := bob.query(t, alice.id)
	if q.Get("master_keys."+esc(alice.id)+".keys."+esc("ed25519:"+pubOf(keys.master))).Str != pubOf(keys.master) ||
		q.Get("self_signing_keys."+esc(alice.id)+".keys."+esc("ed25519:"+pubOf(keys.self))).Str != pubOf(keys.self) {
		t.Fatalf("bob's query: %s", q.Raw)
	}
	if q.Get("user_signing_keys").Exists() {
		t.Fatalf("bob sees alice's user-signing key: %s", q.Raw)
	}
	if own := alice.query(t, alice.id); !own.Get("user_signing_keys." + esc(alice.id)).Exists() {
		t.Fatalf("alice does not see her own user-signing key: %s", own.Raw)
	}

	// New keys need the password.
	newKeys := newCrossSigningKeys(t)
	newBody := newKeys.upload(t, alice.id)
	st, res := alice.do(t, "POST", v3+"/keys/device_signing/upload", newBody)
	if st != http.StatusUnauthorized || res.Get("session").Str == "" || res.Get("flows.0.stages.0").Str != "m.login.password" {
		t.Fatalf("replacing keys without auth: %d %s", st, res.Raw)
	}
	if got := bob.query(t, alice.id).Get("master_keys." + esc(alice.id) + ".keys").Raw; got == "" || !strings.Contains(got, pubOf(keys.master)) {
		t.Fatalf("an unauthenticated replacement changed the master key: %s", got)
	}
	// The session is for these keys only.
	other := newCrossSigningKeys(t).upload(t, alice.id)
	other["auth"] = passwordAuth(res.Get("session").Str, alice.id, servertest.TestPassword)
	alice.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", v3+"/keys/device_signing/upload", other)
	newBody["auth"] = passwordAuth(res.Get("session").Str, alice.id, servertest.TestPassword)
	alice.ok(t, "POST", v3+"/keys/device_signing/upload", newBody)
	if got := bob.query(t, alice.id).Get("master_keys." + esc(alice.id) + ".keys").Raw; !strings.Contains(got, pubOf(newKeys.master)) {
		t.Fatalf("after the authenticated replacement: %s", got)
	}
}

// TestCrossSigningUploadBadInput: keys not signed by the master key, keys
// of another user, missing master keys and keys named like a device are
// refused, and nothing is stored.
func TestCrossSigningUploadBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	keys := newCrossSigningKeys(t)
	masterID := "ed25519:" + pubOf(keys.master)
	stranger := newCrossSigningKeys(t)

	badSelf := keys.upload(t, alice.id)
	badSelf["self_signing_key"] = signAs(t, keyObject(alice.id, "self_signing", keys.self), alice.id, masterID, stranger.master)
	unsignedUser := keys.upload(t, alice.id)
	unsignedUser["user_signing_key"] = keyObject(alice.id, "user_signing", keys.userSigning)
	otherUser := keys.upload(t, alice.id)
	otherUser["master_key"] = keyObject(bob.id, "master", keys.master)
	wrongUsage := keys.upload(t, alice.id)
	wrongUsage["master_key"] = keyObject(alice.id, "self_signing", keys.master)
	twoKeys := keys.upload(t, alice.id)
	twoKeys["master_key"] = map[string]any{"user_id": alice.id, "usage": []string{"master"},
		"keys": map[string]string{"ed25519:" + pubOf(keys.master): pubOf(keys.master), "ed25519:" + pubOf(keys.self): pubOf(keys.self)}}
	misnamed := keys.upload(t, alice.id)
	misnamed["master_key"] = map[string]any{"user_id": alice.id, "usage": []string{"master"},
		"keys": map[string]string{"ed25519:abc": pubOf(keys.master)}}
	onlySelf := map[string]any{"self_signing_key": keys.upload(t, alice.id)["self_signing_key"]}

	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"self-signing key signed by another key", badSelf, 400, "M_INVALID_SIGNATURE"},
		{"unsigned user-signing key", unsignedUser, 400, "M_INVALID_SIGNATURE"},
		{"another user's master key", otherUser, 400, "M_INVALID_PARAM"},
		{"master key with the wrong usage", wrongUsage, 400, "M_INVALID_PARAM"},
		{"master key with two keys", twoKeys, 400, "M_INVALID_PARAM"},
		{"master key named after another key", misnamed, 400, "M_INVALID_PARAM"},
		{"a self-signing key and no master key", onlySelf, 400, "M_MISSING_PARAM"},
		{"master key not an object", map[string]any{"master_key": "x"}, 400, "M_BAD_JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice.fails(t, c.status, c.code, "POST", v3+"/keys/device_signing/upload", c.body)
		})
	}
	if q := bob.query(t, alice.id); q.Get("master_keys").Raw != "{}" || q.Get("self_signing_keys").Raw != "{}" {
		t.Fatalf("refused uploads stored keys: %s", q.Raw)
	}

	// A key named like one of the user's devices: 403.
	token, _ := s.Login(t, alice.id)
	clash := newCrossSigningKeys(t)
	loginAs := &user{s: s, id: alice.id, token: token}
	doOK(t, s, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice",
		"password": servertest.TestPassword, "device_id": pubOf(clash.master)})
	loginAs.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", v3+"/keys/device_signing/upload", clash.upload(t, alice.id))
}

// TestSignaturesUpload: a user signs their devices with their self-signing
// key and their master key with a device, which everyone sees, and another
// user's master key with their user-signing key, which only they see.
// Signatures that do not verify and objects that are not the stored key are
// failures, and nothing of them is stored.
func TestSignaturesUpload(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	carol := newCryptoUser(t, s, "carol")
	alice.uploadAll(t, 1)
	aliceKeys, bobKeys := newCrossSigningKeys(t), newCrossSigningKeys(t)
	alice.ok(t, "POST", v3+"/keys/device_signing/upload", aliceKeys.upload(t, alice.id))
	bob.ok(t, "POST", v3+"/keys/device_signing/upload", bobKeys.upload(t, bob.id))

	var dk map[string]any
	_ = json.Unmarshal(alice.deviceKeys(t), &dk)
	// The device keys as stored: upload exactly these first.
	stored := alice.deviceKeys(t)
	alice.upload(t, map[string]any{"device_keys": stored})
	_ = json.Unmarshal(stored, &dk)
	delete(dk, "signatures")
	sskID := "ed25519:" + pubOf(aliceKeys.self)
	signedDevice := signAs(t, dk, alice.id, sskID, aliceKeys.self)
	signedMaster := signAs(t, keyObject(alice.id, "master", aliceKeys.master), alice.id, alice.keyID(), alice.priv)
	res := alice.ok(t, "POST", v3+"/keys/signatures/upload", map[string]any{alice.id: map[string]any{
		alice.deviceID: signedDevice, pubOf(aliceKeys.master): signedMaster,
	}})
	if res.Get("failures").Raw != "{}" {
		t.Fatalf("failures: %s", res.Raw)
	}
	bobUSK := "ed25519:" + pubOf(bobKeys.userSigning)
	res = bob.ok(t, "POST", v3+"/keys/signatures/upload", map[string]any{alice.id: map[string]any{
		pubOf(aliceKeys.master): signAs(t, keyObject(alice.id, "master", aliceKeys.master), bob.id, bobUSK, bobKeys.userSigning),
	}})
	if res.Get("failures").Raw != "{}" {
		t.Fatalf("bob's failures: %s", res.Raw)
	}

	for _, viewer := range []*cryptoDevice{alice, bob, carol} {
		q := viewer.query(t, alice.id)
		devSigs := q.Get("device_keys." + esc(alice.id) + "." + alice.deviceID + ".signatures." + esc(alice.id))
		if !devSigs.Get(esc(sskID)).Exists() || !devSigs.Get(esc(alice.keyID())).Exists() {
			t.Fatalf("%s does not see alice's device signed by her self-signing key and by itself: %s", viewer.id, devSigs.Raw)
		}
		master := q.Get("master_keys." + esc(alice.id) + ".signatures")
		if !master.Get(esc(alice.id) + "." + esc(alice.keyID())).Exists() {
			t.Fatalf("%s does not see alice's master key signed by her device: %s", viewer.id, master.Raw)
		}
		if seen := master.Get(esc(bob.id)).Exists(); seen != (viewer == bob) {
			t.Fatalf("%s sees bob's signature of alice's master key: %v (%s)", viewer.id, seen, master.Raw)
		}
	}

	// Failures, one per key, and nothing of them stored.
	forged := signAs(t, dk, alice.id, sskID, bobKeys.self)
	altered := map[string]any{}
	for k, v := range dk {
		altered[k] = v
	}
	altered["algorithms"] = []string{"m.megolm.v1.aes-sha2"}
	res = alice.ok(t, "POST", v3+"/keys/signatures/upload", map[string]any{
		alice.id: map[string]any{alice.deviceID: forged, "NODEVICE": signedDevice},
		carol.id: map[string]any{"whatever": signedMaster},
	})
	f := res.Get("failures")
	if f.Get(esc(alice.id)+"."+alice.deviceID+".errcode").Str != "M_INVALID_SIGNATURE" ||
		f.Get(esc(alice.id)+".NODEVICE.errcode").Str != "M_NOT_FOUND" ||
		!f.Get(esc(carol.id)+".whatever.errcode").Exists() {
		t.Fatalf("failures: %s", f.Raw)
	}
	res = alice.ok(t, "POST", v3+"/keys/signatures/upload", map[string]any{alice.id: map[string]any{
		alice.deviceID: signAs(t, altered, alice.id, sskID, aliceKeys.self),
	}})
	if res.Get("failures."+esc(alice.id)+"."+alice.deviceID+".errcode").Str != "M_INVALID_PARAM" {
		t.Fatalf("a signature of another object: %s", res.Raw)
	}
	// The valid signature is still the one shown.
	got := carol.query(t, alice.id).Get("device_keys." + esc(alice.id) + "." + alice.deviceID + ".signatures." + esc(alice.id) + "." + esc(sskID)).Str
	var want struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	_ = json.Unmarshal(signedDevice, &want)
	if got != want.Signatures[alice.id][sskID] {
		t.Fatalf("the stored signature changed: %q", got)
	}
}
