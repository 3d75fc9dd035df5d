package auth

import "github.com/myelin-chat/myelin/roomserver/pdu"

// redactionIsAuthRule reports whether m.room.redaction has its own auth rule
// (versions 1 and 2, rule 11). The rule compares the servers in event IDs,
// which only the opaque event IDs of those versions have; from version 3
// the check moved to "Handling redactions" (see RedactionAllowed).
func redactionIsAuthRule(ver *pdu.RoomVersion) bool {
	return ver.EventIDs == pdu.EventIDOpaque
}

// checkRedactionV1 implements rule 11 of versions 1 and 2: the sender has
// the redact level, or the redacted event's ID is from the same server as
// the redaction's.
func checkRedactionV1(ev *pdu.Event, levels *PowerLevels, senderLevel int64) error {
	if senderLevel >= levels.Redact {
		return nil
	}
	if sameDomain(ev.Redacts(), ev.EventID()) {
		return nil
	}
	return refuse("m.room.redaction", "the sender's power level is below the redact level and the redacted event is from another server")
}

// RedactionAllowed reports whether an accepted redaction may be applied to
// the event it redacts (rooms v3+ "Handling redactions"): its sender has the
// redact level in levels (the power levels at the redaction), or is on the
// same server as the redacted event's sender. In versions 1 and 2 the auth
// rules already decided, so it reports true. The caller checks that both
// events are in the same room and that original is the event redacted.
func RedactionAllowed(redaction, original *pdu.Event, levels *PowerLevels) bool {
	if redactionIsAuthRule(redaction.Version()) {
		return true
	}
	if levels.UserLevel(redaction.Sender()) >= levels.Redact {
		return true
	}
	return sameDomain(redaction.Sender(), original.Sender())
}
