package auth

import (
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Event types and membership values the rules name.
const (
	typeCreate            = "m.room.create"
	typeMember            = "m.room.member"
	typeJoinRules         = "m.room.join_rules"
	typePowerLevels       = "m.room.power_levels"
	typeThirdPartyInvite  = "m.room.third_party_invite"
	typeAliases           = "m.room.aliases"
	typeRedaction         = "m.room.redaction"
	membershipJoin        = "join"
	membershipInvite      = "invite"
	membershipLeave       = "leave"
	membershipBan         = "ban"
	membershipKnock       = "knock"
	joinRulePublic        = "public"
	joinRuleInvite        = "invite"
	joinRuleKnock         = "knock"
	joinRuleRestricted    = "restricted"
	joinRuleKnockRestrict = "knock_restricted"
	keyAuthorisingUser    = "join_authorised_via_users_server"
)

// checkCreate implements rule 1, the rules for m.room.create events.
func checkCreate(ev *pdu.Event) error {
	const rule = "m.room.create"
	ver := ev.Version()
	if len(ev.PrevEventIDs()) > 0 {
		return refuse(rule, "event has prev_events")
	}
	if ver.CreateEventIsRoomID {
		// The room ID is derived from the event ID, so the event must not
		// carry one (pdu reports the derived ID through RoomID()).
		if gjson.GetBytes(ev.JSON(), "room_id").Exists() {
			return refuse(rule, "event has a room_id")
		}
	} else if !sameDomain(ev.RoomID(), ev.Sender()) {
		return refuse(rule, "room_id domain does not match sender domain")
	}
	content := ev.Content()
	if rv := gjson.GetBytes(content, "room_version"); rv.Exists() {
		if rv.Type != gjson.String {
			return refuse(rule, "content.room_version is not a string")
		}
		if _, err := pdu.GetRoomVersion(rv.Str); err != nil {
			return refuse(rule, "content.room_version "+rv.Raw+" is not a recognised version")
		}
	}
	if ver.CreatorInContent && !gjson.GetBytes(content, "creator").Exists() {
		return refuse(rule, "content has no creator")
	}
	if ver.PrivilegedCreators {
		if ac := gjson.GetBytes(content, "additional_creators"); ac.Exists() {
			if !ac.IsArray() {
				return refuse(rule, "content.additional_creators is not an array")
			}
			var err error
			ac.ForEach(func(_, u gjson.Result) bool {
				if u.Type != gjson.String || !validUserID(u.Str) {
					err = refuse(rule, "content.additional_creators holds "+u.Raw+", not a valid user ID")
				}
				return err == nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// createInfo is what the rules read from the room's m.room.create event.
type createInfo struct {
	ev *pdu.Event
	// creator is the user the "creator's first join" rule and the default
	// power levels of versions 1 to 11 name: content.creator up to version
	// 10, the sender from version 11. Empty if content.creator is not a string.
	creator string
	// federate is false when content["m.federate"] is present and anything
	// but true. The spec says "set to false"; Synapse refuses federation for
	// any value other than true, and so do we, so the servers agree.
	federate bool
	// creators are the privileged creators (version 12+): the sender and
	// the string entries of content.additional_creators.
	creators []string
}

func parseCreate(ev *pdu.Event) createInfo {
	ver := ev.Version()
	content := ev.Content()
	info := createInfo{ev: ev, federate: true}
	if ver.CreatorInContent {
		if c := gjson.GetBytes(content, "creator"); c.Type == gjson.String {
			info.creator = c.Str
		}
	} else {
		info.creator = ev.Sender()
	}
	if f := gjson.GetBytes(content, `m\.federate`); f.Exists() && f.Type != gjson.True {
		info.federate = false
	}
	if ver.PrivilegedCreators {
		info.creators = []string{ev.Sender()}
		if ac := gjson.GetBytes(content, "additional_creators"); ac.IsArray() {
			ac.ForEach(func(_, u gjson.Result) bool {
				if u.Type == gjson.String {
					info.creators = append(info.creators, u.Str)
				}
				return true
			})
		}
	}
	return info
}

// powerLevels returns the effective levels given the power levels event
// (nil when the room has none).
func (c *createInfo) powerLevels(pl *pdu.Event) (*PowerLevels, error) {
	ver := c.ev.Version()
	var p *PowerLevels
	if pl == nil {
		p = defaultPowerLevels()
		if !ver.PrivilegedCreators && c.creator != "" {
			p.Users = map[string]int64{c.creator: DefaultCreatorLevel}
		}
	} else {
		var err error
		if p, err = ParsePowerLevels(ver, pl.Content()); err != nil {
			return nil, err
		}
	}
	p.Creators = c.creators
	return p, nil
}
