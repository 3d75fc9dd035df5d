package e2ee

// Cross-signing (client-server-api "Cross-signing"): POST
// /keys/device_signing/upload and POST /keys/signatures/upload.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// CrossSigningUpload is the body of /keys/device_signing/upload, less auth.
type CrossSigningUpload struct {
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
	UserSigningKey json.RawMessage `json:"user_signing_key"`
}

// CrossSigningPlan is a checked upload, ready to store.
type CrossSigningPlan struct {
	userID string
	keys   []*checkedCrossSigningKey
	// storedMaster is the master key stored when the upload was checked
	// ("" for none): storing refuses to go on if it changed meanwhile.
	storedMaster string
	// NeedsAuth: the upload replaces keys, so the user must pass
	// user-interactive auth first. The spec spares the first upload, and a
	// repeat of the keys already stored (a retried request).
	NeedsAuth bool
}

// PrepareCrossSigning checks userID's cross-signing upload: each key's
// shape and owner, the self-signing and user-signing keys' signatures by
// the master key (the one uploaded with them, or the stored one), and that
// no key is named like one of the user's devices.
func (s *Service) PrepareCrossSigning(ctx context.Context, userID string, req *CrossSigningUpload) (*CrossSigningPlan, error) {
	p := &CrossSigningPlan{userID: userID}
	present := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }
	var master *checkedCrossSigningKey
	if present(req.MasterKey) {
		k, err := checkCrossSigningKey(req.MasterKey, userID, storage.MasterKey, "master_key")
		if err != nil {
			return nil, err
		}
		master = k
		p.keys = append(p.keys, k)
	}
	all, err := s.db.CrossSigningKeysOfUsers(ctx, []string{userID})
	if err != nil {
		return nil, err
	}
	stored := all[userID]
	if m, ok := stored[storage.MasterKey]; ok {
		p.storedMaster = m.PublicKey
		if master == nil {
			pub, _ := ed25519Key(m.PublicKey)
			master = &checkedCrossSigningKey{CrossSigningKey: m, pub: pub}
		}
	}
	for _, sub := range []struct {
		raw        json.RawMessage
		typ, field string
	}{
		{req.SelfSigningKey, storage.SelfSigningKey, "self_signing_key"},
		{req.UserSigningKey, storage.UserSigningKey, "user_signing_key"},
	} {
		if !present(sub.raw) {
			continue
		}
		k, err := checkCrossSigningKey(sub.raw, userID, sub.typ, sub.field)
		if err != nil {
			return nil, err
		}
		if master == nil || master.pub == nil {
			return nil, httputil.MissingParam("no master key: upload master_key with the " + sub.field)
		}
		if err := verify(k.KeyJSON, userID, "ed25519:"+master.PublicKey, master.pub, sub.field); err != nil {
			return nil, err
		}
		p.keys = append(p.keys, k)
	}
	if err := s.checkKeysAreNotDevices(ctx, userID, p.keys); err != nil {
		return nil, err
	}
	if p.storedMaster != "" {
		for _, k := range p.keys {
			if old, ok := stored[k.Type]; !ok || !bytes.Equal(old.KeyJSON, k.KeyJSON) {
				p.NeedsAuth = true
			}
		}
	}
	return p, nil
}

// checkKeysAreNotDevices refuses cross-signing keys named like one of the
// user's devices (403 M_FORBIDDEN, as the spec says).
func (s *Service) checkKeysAreNotDevices(ctx context.Context, userID string, keys []*checkedCrossSigningKey) error {
	lp, ok := s.isLocal(userID)
	if !ok || len(keys) == 0 {
		return nil
	}
	devices, err := s.db.ListDevices(ctx, lp)
	if err != nil {
		return err
	}
	for _, k := range keys {
		for _, d := range devices {
			if d.DeviceID == k.PublicKey {
				return httputil.Forbidden("the " + k.Type + " key's public key is the ID of one of your devices")
			}
		}
	}
	return nil
}

// StoreCrossSigning stores a prepared upload; also, in the same
// transaction, runs within (finishing the user-interactive auth), when not
// nil.
func (s *Service) StoreCrossSigning(ctx context.Context, p *CrossSigningPlan, within func(tx *storage.Tx) error) error {
	var pos int64
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		pos = 0
		stored, err := tx.CrossSigningKeys(ctx, p.userID)
		if err != nil {
			return err
		}
		if stored[storage.MasterKey].PublicKey != p.storedMaster {
			return httputil.NewError(http.StatusConflict, httputil.CodeUnknown, "the cross-signing keys changed meanwhile; upload again")
		}
		changed, public := false, false
		for _, k := range p.keys {
			if old, ok := stored[k.Type]; ok && bytes.Equal(old.KeyJSON, k.KeyJSON) {
				continue
			}
			if err := tx.SetCrossSigningKey(ctx, p.userID, k.CrossSigningKey); err != nil {
				return err
			}
			changed = true
			// Other servers get the master and self-signing keys; the
			// user-signing key is its owner's alone.
			public = public || k.Type != storage.UserSigningKey
		}
		if within != nil {
			if err := within(tx); err != nil {
				return err
			}
		}
		if changed {
			if pos, err = tx.MarkDeviceListChanged(ctx, p.userID); err != nil {
				return err
			}
		}
		if public {
			return tx.QueueSigningKeyUpdate(ctx, p.userID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notifyDeviceListChange(ctx, p.userID, pos)
	return nil
}

// SignatureFailure is one entry of /keys/signatures/upload's failures.
type SignatureFailure struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// MaxSignatureUploads bounds the signed objects of one
// /keys/signatures/upload.
const MaxSignatureUploads = 1000

// UploadSignatures stores the signatures requester made of keys (user →
// key ID → the signed key object) that verify, and returns the failures:
// user → key ID → error. requester may sign its own devices with its
// self-signing key, its own master key with its devices, and other users'
// master keys with its user-signing key.
func (s *Service) UploadSignatures(ctx context.Context, requester string, body map[string]map[string]json.RawMessage) (map[string]map[string]SignatureFailure, error) {
	n := 0
	for _, keys := range body {
		n += len(keys)
	}
	if n > MaxSignatureUploads {
		return nil, httputil.InvalidParam("too many signed keys in one upload")
	}
	failures := map[string]map[string]SignatureFailure{}
	fail := func(user, keyID string, err error) {
		f := SignatureFailure{Errcode: httputil.CodeUnknown, Error: err.Error()}
		if he, ok := errors.AsType[*httputil.Error](err); ok {
			f = SignatureFailure{Errcode: he.Code, Error: he.Message}
		}
		if failures[user] == nil {
			failures[user] = map[string]SignatureFailure{}
		}
		failures[user][keyID] = f
	}
	own, err := s.db.CrossSigningKeysOfUsers(ctx, []string{requester})
	if err != nil {
		return nil, err
	}
	mine := own[requester]
	var sigs []storage.KeySignature
	for user, keys := range body {
		for keyID, raw := range keys {
			got, err := s.checkSignedKey(ctx, requester, mine, user, keyID, raw)
			if err != nil {
				if _, ok := errors.AsType[*httputil.Error](err); !ok {
					return nil, err
				}
				fail(user, keyID, err)
				continue
			}
			sigs = append(sigs, got...)
		}
	}
	if len(sigs) == 0 {
		return failures, nil
	}
	// Other servers hear of new signatures of the requester's own devices
	// (m.device_list_update) and master key (m.signing_key_update); a
	// signature of another user's key is the requester's business only.
	var (
		devices      []string
		masterSigned bool
	)
	for _, sg := range sigs {
		switch {
		case sg.TargetUserID != requester:
		case sg.TargetKeyID == mine[storage.MasterKey].PublicKey:
			masterSigned = true
		case !slices.Contains(devices, sg.TargetKeyID):
			devices = append(devices, sg.TargetKeyID)
		}
	}
	var pos int64
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		if err := tx.AddKeySignatures(ctx, sigs); err != nil {
			return err
		}
		var err error
		if pos, err = tx.MarkDeviceListChanged(ctx, requester); err != nil {
			return err
		}
		if masterSigned {
			if err := tx.QueueSigningKeyUpdate(ctx, requester); err != nil {
				return err
			}
		}
		return tx.QueueDeviceListUpdates(ctx, requester, devices)
	})
	if err != nil {
		return nil, err
	}
	s.notifyDeviceListChange(ctx, requester, pos)
	return failures, nil
}

// checkSignedKey checks one signed object of a signature upload and returns
// the new signatures it carries. An *httputil.Error is the key's failure;
// anything else is a fault.
func (s *Service) checkSignedKey(ctx context.Context, requester string, mine map[string]storage.CrossSigningKey, user, keyID string, raw json.RawMessage) ([]storage.KeySignature, error) {
	signed, err := canonicalObject(raw, "the signed key", "unsigned")
	if err != nil {
		return nil, err
	}
	if user != requester {
		// Another user's master key, signed with the user-signing key.
		usk, ok := mine[storage.UserSigningKey]
		if !ok {
			return nil, httputil.InvalidParam("you have no user-signing key to sign other users' keys with")
		}
		master, err := s.masterKeyOf(ctx, user)
		if err != nil {
			return nil, err
		}
		if master == nil || master.PublicKey != keyID {
			return nil, httputil.NotFound(keyID + " is not " + user + "'s master key")
		}
		return signatureOf(signed, master.KeyJSON, user, keyID, requester, usk)
	}
	if m, ok := mine[storage.MasterKey]; ok && m.PublicKey == keyID {
		// The user's own master key, signed by their devices.
		return s.deviceSignaturesOfMaster(ctx, requester, m, signed)
	}
	// One of the user's devices, signed with the self-signing key.
	dk, err := s.db.DeviceKeysOf(ctx, requester, keyID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, httputil.NotFound(keyID + " is neither a device nor the master key of " + requester)
	}
	if err != nil {
		return nil, err
	}
	ssk, ok := mine[storage.SelfSigningKey]
	if !ok {
		return nil, httputil.InvalidParam("you have no self-signing key to sign your devices with")
	}
	return signatureOf(signed, dk.KeyJSON, requester, keyID, requester, ssk)
}

// signatureOf checks that signed is the stored key (signatures aside) and
// carries a valid signature by signer's cross-signing key by, and returns
// that signature.
func signatureOf(signed, stored []byte, targetUser, targetKeyID, signer string, by storage.CrossSigningKey) ([]storage.KeySignature, error) {
	if err := sameKey(signed, stored); err != nil {
		return nil, err
	}
	pub, ok := ed25519Key(by.PublicKey)
	if !ok {
		return nil, httputil.InvalidParam("the stored " + by.Type + " key is unusable")
	}
	sigKeyID := "ed25519:" + by.PublicKey
	if err := verify(signed, signer, sigKeyID, pub, targetKeyID); err != nil {
		return nil, err
	}
	return []storage.KeySignature{{
		TargetUserID: targetUser, TargetKeyID: targetKeyID,
		SignerUserID: signer, SignerKeyID: sigKeyID, Signature: signatureBy(signed, signer, sigKeyID),
	}}, nil
}

// deviceSignaturesOfMaster returns the signatures of the user's master key
// by the user's devices that verify; at least one is needed.
func (s *Service) deviceSignaturesOfMaster(ctx context.Context, userID string, master storage.CrossSigningKey, signed []byte) ([]storage.KeySignature, error) {
	if err := sameKey(signed, master.KeyJSON); err != nil {
		return nil, err
	}
	var o struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	_ = json.Unmarshal(signed, &o)
	var out []storage.KeySignature
	var firstErr error
	for keyID, sig := range o.Signatures[userID] {
		deviceID, ok := strings.CutPrefix(keyID, "ed25519:")
		if !ok || deviceID == master.PublicKey {
			continue // the master key's self-signature is in the key itself
		}
		dk, err := s.db.DeviceKeysOf(ctx, userID, deviceID)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pub, ok := edPublicKey(dk.KeyJSON, deviceID)
		if !ok {
			continue
		}
		if err := verify(signed, userID, keyID, pub, "the master key"); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, storage.KeySignature{TargetUserID: userID, TargetKeyID: master.PublicKey,
			SignerUserID: userID, SignerKeyID: keyID, Signature: sig})
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, invalidSignature("the master key carries no signature by one of your devices")
	}
	return out, nil
}

// sameKey checks that a signed upload is the stored key apart from its
// signatures (400 M_INVALID_PARAM otherwise).
func sameKey(signed, stored []byte) error {
	a, err1 := canonicalObject(signed, "the signed key", "signatures", "unsigned")
	b, err2 := canonicalObject(stored, "the stored key", "signatures", "unsigned")
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return httputil.InvalidParam("the signed object is not the key stored under this ID")
	}
	return nil
}

// masterKeyOf returns user's master key: a local user's from the database,
// a remote user's from their server. nil when they have none.
func (s *Service) masterKeyOf(ctx context.Context, user string) (*storage.CrossSigningKey, error) {
	if _, ok := s.isLocal(user); ok {
		keys, err := s.db.CrossSigningKeysOfUsers(ctx, []string{user})
		if err != nil {
			return nil, err
		}
		if k, ok := keys[user][storage.MasterKey]; ok {
			return &k, nil
		}
		return nil, nil
	}
	_, server, ok := splitUserID(user)
	if !ok {
		return nil, httputil.InvalidParam(user + " is not a user ID")
	}
	res := newQueryResult()
	res.Failures = map[string]Failure{}
	s.queryRemote(ctx, "", map[string]map[string][]string{server: {user: {}}}, DefaultRemoteTimeout, res)
	if f, failed := res.Failures[server]; failed {
		return nil, httputil.NewError(http.StatusBadGateway, httputil.CodeUnknown, "cannot fetch "+user+"'s master key from "+server+": "+f.Message)
	}
	raw, ok := res.MasterKeys[user]
	if !ok {
		return nil, nil
	}
	k, err := checkCrossSigningKey(raw, user, storage.MasterKey, "the master key of "+user)
	if err != nil {
		return nil, httputil.NewError(http.StatusBadGateway, httputil.CodeUnknown, user+"'s server sent an invalid master key")
	}
	return &k.CrossSigningKey, nil
}
