package auth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// The identity server of the third-party invite tests.
const idServer = "id.test"

func idKey(n byte) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte{'i', 'd', n})
	return ed25519.NewKeyFromSeed(seed[:])
}

func idPublic(n byte) string {
	return pdu.EncodeBase64(idKey(n).Public().(ed25519.PublicKey))
}

// signedBlock returns the "signed" object an identity server issues for
// the mxid and token, signed with identity key n.
func signedBlock(t testing.TB, mxid, token string, n byte) string {
	t.Helper()
	b, err := pdu.SignJSON([]byte(`{"mxid":"`+mxid+`","token":"`+token+`"}`), idServer, "ed25519:0", idKey(n))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tpInvite(signed string) string {
	return `{"membership":"invite","third_party_invite":{"display_name":"b...@example.com","signed":` + signed + `}}`
}

// thirdPartyInviteEvent puts alice's m.room.third_party_invite for token
// into the state, with the public key content given.
func thirdPartyInviteEvent(r *room, sender, token, keys string) {
	r.apply(r.event(sender, typeThirdPartyInvite, sp(token),
		`{"display_name":"b...@example.com","key_validity_url":"https://id.test/_matrix/identity/v2/pubkey/isvalid",`+keys+`}`))
}

func TestThirdPartyInvite(t *testing.T) {
	pk := `"public_key":"` + idPublic(1) + `"`
	runRuleCases(t, []ruleCase{
		{name: "public_key", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", pk) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "public_keys", setup: func(r *room) {
			thirdPartyInviteEvent(r, alice, "tok", `"public_key":"not base64!","public_keys":[{"public_key":"`+idPublic(2)+`"},7,{"public_key":"`+idPublic(1)+`"}]`)
		}, ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "padded url-safe key", setup: func(r *room) {
			thirdPartyInviteEvent(r, alice, "tok", `"public_key":"`+base64.URLEncoding.EncodeToString(idKey(1).Public().(ed25519.PublicKey))+`"`)
		}, ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "sender need not be joined", setup: func(r *room) {
			r.set(carol, membershipJoin)
			thirdPartyInviteEvent(r, carol, "tok", pk)
			r.set(carol, membershipLeave)
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "target banned", want: "m.room.member invite (third party): the target user is banned", setup: func(r *room) {
			thirdPartyInviteEvent(r, alice, "tok", pk)
			r.set(bob, membershipBan)
		}, ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "no signed", want: "has no signed", ev: func(r *room) *pdu.Event {
			return r.member(alice, bob, `{"membership":"invite","third_party_invite":{"display_name":"x"}}`)
		}},
		{name: "third_party_invite not an object", want: "has no signed", ev: func(r *room) *pdu.Event {
			return r.member(alice, bob, `{"membership":"invite","third_party_invite":"signed"}`)
		}},
		{name: "signed not an object", want: "signed is not an object", ev: func(r *room) *pdu.Event {
			return r.member(alice, bob, tpInvite(`["mxid","token"]`))
		}},
		{name: "no token", want: "signed has no mxid and token", ev: func(r *room) *pdu.Event {
			return r.member(alice, bob, tpInvite(`{"mxid":"`+bob+`"}`))
		}},
		{name: "token a number", want: "signed has no mxid and token", ev: func(r *room) *pdu.Event {
			return r.member(alice, bob, tpInvite(`{"mxid":"`+bob+`","token":1}`))
		}},
		{name: "mxid mismatch", want: "signed.mxid is not the state_key", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", pk) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, dave, "tok", 1))) }},
		{name: "no invite event", want: "the room has no m.room.third_party_invite for the token", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "other", pk) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "other sender", want: "the sender is not the sender of the m.room.third_party_invite", setup: func(r *room) {
			r.set(carol, membershipJoin)
			thirdPartyInviteEvent(r, carol, "tok", pk)
		}, ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "wrong key", want: "no signature in signed verifies", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", pk) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 2))) }},
		{name: "no keys", want: "no signature in signed verifies", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", `"public_keys":"x"`) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(signedBlock(r.t, bob, "tok", 1))) }},
		{name: "no signatures", want: "no signature in signed verifies", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", pk) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, tpInvite(`{"mxid":"`+bob+`","token":"tok"}`)) }},
		{name: "tampered", want: "no signature in signed verifies", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", pk) },
			ev: func(r *room) *pdu.Event {
				s := signedBlock(r.t, bob, "tok", 1)
				return r.member(alice, bob, tpInvite(s[:len(s)-1]+`,"extra":1}`))
			}},
		{name: "odd signatures", want: "no signature in signed verifies", setup: func(r *room) { thirdPartyInviteEvent(r, alice, "tok", pk) },
			ev: func(r *room) *pdu.Event {
				return r.member(alice, bob, tpInvite(`{"mxid":"`+bob+`","token":"tok","signatures":{"a":"x","b":{"curve25519:0":"AAAA","ed25519:0":5,"ed25519:1":"AAAA"}}}`))
			}},
	})
}

// A crafted invite with hundreds of signatures and keys costs a bounded
// number of verifications.
func TestThirdPartyInviteBounded(t *testing.T) {
	r := newRoom(t, 10, "", false)
	keys := `"public_keys":[`
	for i := 0; i < 40; i++ {
		if i > 0 {
			keys += ","
		}
		keys += `{"public_key":"` + idPublic(byte(10+i)) + `"}`
	}
	keys += `]`
	thirdPartyInviteEvent(r, alice, "tok", keys)
	sigs := ""
	for i := 0; i < 40; i++ {
		if i > 0 {
			sigs += ","
		}
		sigs += `"ed25519:` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":"` + pdu.EncodeBase64(make([]byte, 64)) + `"`
	}
	signed := `{"mxid":"` + bob + `","token":"tok","signatures":{"id.test":{` + sigs + `}}}`
	err := r.check(r.member(alice, bob, tpInvite(signed)))
	if err == nil {
		t.Fatal("allowed")
	}
}
