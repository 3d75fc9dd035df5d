package auth

import (
	"crypto/ed25519"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// maxThirdPartyVerifications bounds the signature checks of one third-party
// invite (signatures in "signed" times public keys of the invite). Real
// invites need one or two; the bound keeps a crafted event from costing
// seconds of CPU.
const maxThirdPartyVerifications = 64

// checkThirdPartyInvite implements the rules for an invite whose content has
// third_party_invite: the invite is allowed when an identity server, through
// a key named in the room's m.room.third_party_invite event, signed the
// binding of the invited user to the invite's token.
func (x *checkCtx) checkThirdPartyInvite(target string, tpi gjson.Result) error {
	const rule = "m.room.member invite (third party)"
	ev := x.ev
	if x.membership(target) == membershipBan {
		return refuse(rule, "the target user is banned")
	}
	signed := gjson.Result{}
	if tpi.IsObject() {
		signed = tpi.Get("signed")
	}
	if !signed.Exists() {
		return refuse(rule, "content.third_party_invite has no signed")
	}
	if !signed.IsObject() {
		return refuse(rule, "content.third_party_invite.signed is not an object")
	}
	mxid, token := signed.Get("mxid"), signed.Get("token")
	if mxid.Type != gjson.String || token.Type != gjson.String {
		return refuse(rule, "signed has no mxid and token strings")
	}
	if mxid.Str != target {
		return refuse(rule, "signed.mxid is not the state_key")
	}
	invite := x.get(typeThirdPartyInvite, token.Str)
	if invite == nil {
		return refuse(rule, "the room has no m.room.third_party_invite for the token")
	}
	if invite.Sender() != ev.Sender() {
		return refuse(rule, "the sender is not the sender of the m.room.third_party_invite")
	}
	if verifyThirdPartySigned([]byte(signed.Raw), invite.Content()) {
		return nil
	}
	return refuse(rule, "no signature in signed verifies with a public key of the m.room.third_party_invite")
}

// verifyThirdPartySigned reports whether any ed25519 signature in signed
// verifies with any public key of the m.room.third_party_invite content:
// content.public_key and each content.public_keys[].public_key.
func verifyThirdPartySigned(signed []byte, inviteContent []byte) bool {
	var keys []ed25519.PublicKey
	addKey := func(k gjson.Result) {
		if k.Type != gjson.String {
			return
		}
		if b, err := pdu.DecodeBase64(k.Str); err == nil && len(b) == ed25519.PublicKeySize {
			keys = append(keys, ed25519.PublicKey(b))
		}
	}
	content := gjson.ParseBytes(inviteContent)
	addKey(content.Get("public_key"))
	if pks := content.Get("public_keys"); pks.IsArray() {
		pks.ForEach(func(_, pk gjson.Result) bool {
			if pk.IsObject() {
				addKey(pk.Get("public_key"))
			}
			return true
		})
	}
	if len(keys) == 0 {
		return false
	}
	sigs := gjson.GetBytes(signed, "signatures")
	if !sigs.IsObject() {
		return false
	}
	attempts := 0
	ok := false
	sigs.ForEach(func(server, byKey gjson.Result) bool {
		if !byKey.IsObject() {
			return true
		}
		byKey.ForEach(func(keyID, _ gjson.Result) bool {
			if !strings.HasPrefix(keyID.Str, "ed25519:") {
				return true
			}
			for _, pub := range keys {
				if attempts++; attempts > maxThirdPartyVerifications {
					return false
				}
				if pdu.VerifyJSON(signed, server.Str, keyID.Str, pub) == nil {
					ok = true
					return false
				}
			}
			return true
		})
		return !ok && attempts <= maxThirdPartyVerifications
	})
	return ok
}
