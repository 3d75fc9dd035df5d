package pdu

import "errors"

// The redaction algorithm (client-server-api "Redactions"; rooms/fragments
// v1-redactions, v6-redactions, v9-redactions, v11-redactions and the v8
// text in rooms/v8.md). Where the fragments leave a case open, this follows
// Synapse's prune_event_dict: "content" is always present in the result,
// and in v11+ a third_party_invite that is an object is kept as an object
// holding only its "signed" key.

// Redact returns the redacted form of the event JSON raw under the rules of
// ver, as canonical JSON. "unsigned" is removed along with every other key
// the algorithm does not keep.
func Redact(raw []byte, ver *RoomVersion) ([]byte, error) {
	_, top, err := canonicalize(raw, ver.StrictCanonicalJSON)
	if err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errors.New("event is not a JSON object")
	}
	evType := ""
	for _, m := range top {
		switch {
		case keyEquals(m.key, "type"):
			t, ok := decodeString(m.val)
			if !ok {
				return nil, &FormatError{Field: "type", Reason: "not a string"}
			}
			evType = t
		case keyEquals(m.key, "content"):
			if m.val[0] != '{' {
				return nil, &FormatError{Field: "content", Reason: "not an object"}
			}
		}
	}
	return appendRedacted(nil, top, evType, ver.Redaction, true), nil
}

// Redacted returns the event as it is after a redaction: same event ID,
// same room version, with only the keys the algorithm keeps.
func (e *Event) Redacted() *Event {
	red := appendRedacted(nil, topMembers(e.raw), e.f.Type, e.version.Redaction, true)
	r, err := newEvent(red, topMembers(red), e.version, e.eventID)
	if err != nil {
		// Redaction keeps every key the format requires and never changes
		// the type of a kept value, so a valid event stays valid.
		panic("pdu: redacted form of a valid event is invalid: " + err.Error())
	}
	return r
}

// keptTopLevel reports whether the redaction algorithm keeps a top-level key.
func keptTopLevel(key []byte, rules RedactionRules) bool {
	switch string(key) {
	case "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
		"signatures", "depth", "prev_events", "auth_events", "origin_server_ts":
		return true
	case "prev_state", "membership", "origin":
		return rules < RedactionV11
	}
	return false
}

// keptContent reports whether the redaction algorithm keeps a content key
// of an event of type evType. (Whole-content and third_party_invite cases
// are handled by appendRedactedContent.)
func keptContent(evType string, key []byte, rules RedactionRules) bool {
	k := string(key)
	switch evType {
	case "m.room.member":
		return k == "membership" || (k == "join_authorised_via_users_server" && rules >= RedactionV9)
	case "m.room.create":
		return k == "creator"
	case "m.room.join_rules":
		return k == "join_rule" || (k == "allow" && rules >= RedactionV8)
	case "m.room.power_levels":
		switch k {
		case "ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default":
			return true
		case "invite":
			return rules >= RedactionV11
		}
	case "m.room.aliases":
		return k == "aliases" && rules < RedactionV6
	case "m.room.history_visibility":
		return k == "history_visibility"
	case "m.room.redaction":
		return k == "redacts" && rules >= RedactionV11
	}
	return false
}

// appendRedacted writes the redacted form of the canonical event whose
// top-level members are top. Without keepSignatures the "signatures" key
// is dropped too, which gives the bytes that are signed and that the
// reference hash covers.
func appendRedacted(dst []byte, top []member, evType string, rules RedactionRules, keepSignatures bool) []byte {
	dst = append(dst, '{')
	wroteContent := false
	for _, m := range top {
		if !keptTopLevel(m.key, rules) || (!keepSignatures && keyEquals(m.key, "signatures")) {
			continue
		}
		if !wroteContent && string(m.key) >= "content" {
			// The algorithm always yields a content object, even if the
			// event had none.
			var content []byte
			if keyEquals(m.key, "content") {
				content = m.val
			}
			if len(dst) > 1 {
				dst = append(dst, ',')
			}
			dst = append(dst, `"content":`...)
			dst = appendRedactedContent(dst, content, evType, rules)
			wroteContent = true
			if content != nil {
				continue
			}
		}
		if len(dst) > 1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, m.key...)
		dst = append(dst, '"', ':')
		dst = append(dst, m.val...)
	}
	if !wroteContent {
		if len(dst) > 1 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"content":`...)
		dst = appendRedactedContent(dst, nil, evType, rules)
	}
	return append(dst, '}')
}

// appendRedactedContent writes the redacted content object; content is the
// canonical original (nil if there was none).
func appendRedactedContent(dst, content []byte, evType string, rules RedactionRules) []byte {
	if content == nil {
		return append(dst, '{', '}')
	}
	if evType == "m.room.create" && rules >= RedactionV11 {
		return append(dst, content...) // v11: create keeps its whole content
	}
	switch evType {
	case "m.room.member", "m.room.create", "m.room.join_rules", "m.room.power_levels",
		"m.room.aliases", "m.room.history_visibility", "m.room.redaction":
	default:
		return append(dst, '{', '}') // no content key survives
	}
	dst = append(dst, '{')
	first := true
	for k, v := range objectMembers(content) {
		var val []byte
		switch {
		case keptContent(evType, k, rules):
			val = v
		case rules >= RedactionV11 && evType == "m.room.member" && keyEquals(k, "third_party_invite") && v[0] == '{':
			// v11 keeps third_party_invite, holding only its "signed" key.
			val = []byte("{}")
			if signed := lookup(v, "signed"); signed != nil {
				val = append(append([]byte(`{"signed":`), signed...), '}')
			}
		default:
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
		dst = append(dst, val...)
	}
	return append(dst, '}')
}
