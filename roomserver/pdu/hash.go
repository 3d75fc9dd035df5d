package pdu

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Hashes and signatures of events (server-server-api "Signing Events").

// ErrContentHashMismatch: the event's content differs from what its sender
// hashed. The receive path then uses the redacted event instead.
var ErrContentHashMismatch = errors.New("content hash does not match")

// CheckContentHash recomputes the content hash (sha256 of the event
// without unsigned, signatures and hashes) and compares it with
// hashes.sha256. It returns an error wrapping ErrContentHashMismatch if
// they differ.
func (e *Event) CheckContentHash() error {
	// ParseEvent checked that the hash decodes. Most events fit in buf;
	// larger ones spill to the heap.
	want, _ := DecodeBase64(e.f.ContentHash)
	var buf [4096]byte
	got := sha256.Sum256(appendObjectWithout(buf[:0], topMembers(e.raw), "hashes", "signatures"))
	if subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return fmt.Errorf("event %s: %w", e.eventID, ErrContentHashMismatch)
	}
	return nil
}

// VerifySignature checks the signature of serverName with key keyID on the
// event: the signature covers the redacted event, so it verifies whether
// the event was received whole or redacted.
func (e *Event) VerifySignature(serverName, keyID string, pub ed25519.PublicKey) error {
	red := appendRedacted(nil, topMembers(e.raw), e.f.Type, e.version.Redaction, true)
	if err := verifyMembers(topMembers(red), serverName, keyID, pub); err != nil {
		return fmt.Errorf("event %s: %w", e.eventID, err)
	}
	return nil
}

// RequiredSigners returns the server names whose signatures the event
// must carry (server-server-api "Validating hashes and signatures on
// received events"), following Synapse:
//   - the sender's server, except for an invite made from a third-party
//     invite (m.room.member, membership invite, content.third_party_invite),
//     which may be sent by another server;
//   - v1–v2: the server in the event ID, if different;
//   - v8+: for a join with content.join_authorised_via_users_server, that
//     user's server.
func RequiredSigners(ev *Event) []string {
	var out []string
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	isMember := ev.f.Type == "m.room.member"
	if !(isMember && ev.f.Membership == "invite" && lookup(ev.f.Content, "third_party_invite") != nil) {
		add(DomainOf(ev.f.Sender))
	}
	if ev.version.EventIDs == EventIDOpaque {
		add(DomainOf(ev.eventID))
	}
	if ev.version.RestrictedJoins && isMember && ev.f.Membership == "join" {
		if v := lookup(ev.f.Content, "join_authorised_via_users_server"); v != nil {
			u, _ := decodeString(v) // ParseEvent checked it is a user ID
			add(DomainOf(u))
		}
	}
	return out
}

// hashAndSign adds the content hash to the event JSON obj and signs its
// redacted form as origin ("Adding hashes and signatures to outgoing
// events"). The result is canonical and keeps unsigned.
func hashAndSign(obj []byte, ver *RoomVersion, origin, keyID string, key ed25519.PrivateKey) ([]byte, error) {
	if err := checkSigningKey(keyID, key); err != nil {
		return nil, err
	}
	_, top, err := canonicalize(obj, ver.StrictCanonicalJSON)
	if err != nil {
		return nil, err
	}
	if top == nil {
		return nil, formatErr("", "not a JSON object")
	}
	evType := ""
	for _, m := range top {
		if keyEquals(m.key, "type") {
			t, ok := decodeString(m.val)
			if !ok {
				return nil, formatErr("type", "not a string")
			}
			evType = t
		}
		if keyEquals(m.key, "content") && m.val[0] != '{' {
			return nil, formatErr("content", "not an object")
		}
	}
	sum := sha256.Sum256(appendObjectWithout(nil, top, "unsigned", "signatures", "hashes"))
	hashes := `{"sha256":"` + EncodeBase64(sum[:]) + `"}`

	// Put the hashes in place (keys stay sorted: replace, or insert before
	// the first key that sorts after "hashes").
	withHash := make([]member, 0, len(top)+1)
	placed := false
	for _, m := range top {
		if !placed && string(m.key) >= "hashes" {
			withHash = append(withHash, member{key: []byte("hashes"), val: []byte(hashes)})
			placed = true
			if keyEquals(m.key, "hashes") {
				continue
			}
		}
		withHash = append(withHash, m)
	}
	if !placed {
		withHash = append(withHash, member{key: []byte("hashes"), val: []byte(hashes)})
	}
	red := appendRedacted(nil, withHash, evType, ver.Redaction, false)
	sig := EncodeBase64(ed25519.Sign(key, red))
	return mergeSignature(withHash, origin, keyID, sig)
}
