package clientapi

// Events as clients see them (client-server-api "Room event format",
// definitions/client_event.yaml), built from the stored event.

import (
	"encoding/json"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// clientEvent is definitions/client_event.yaml.
type clientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id"`
	// Redacts is the redacted event of an m.room.redaction, at the top
	// level in every room version: versions before 11 put it there, and
	// clients written for them read it there (Synapse copies it too).
	Redacts  string          `json:"redacts,omitempty"`
	Sender   string          `json:"sender"`
	StateKey *string         `json:"state_key,omitempty"`
	Type     string          `json:"type"`
	Unsigned json.RawMessage `json:"unsigned"`
}

// formatEvent turns a stored event into its client form. The unsigned
// object carries age and what the server stored there (redacted_because).
func formatEvent(rec *storage.EventRecord) *clientEvent {
	ev := &clientEvent{
		Content:        json.RawMessage(`{}`),
		EventID:        rec.EventID,
		OriginServerTS: rec.OriginServerTS,
		RoomID:         rec.RoomID,
		Redacts:        rec.Redacts,
		Sender:         rec.Sender,
		StateKey:       rec.StateKey,
		Type:           rec.Type,
	}
	if c := gjson.GetBytes(rec.JSON, "content"); c.IsObject() {
		ev.Content = json.RawMessage(c.Raw)
	}
	unsigned := map[string]json.RawMessage{}
	if u := gjson.GetBytes(rec.JSON, "unsigned"); u.IsObject() {
		_ = json.Unmarshal([]byte(u.Raw), &unsigned)
	}
	if rb, ok := unsigned["redacted_because"]; ok && rec.RedactedBy != "" {
		unsigned["redacted_because"] = redactionForClient(rb, rec.RedactedBy)
	}
	unsigned["age"], _ = json.Marshal(max(0, time.Now().UnixMilli()-rec.OriginServerTS))
	ev.Unsigned, _ = json.Marshal(unsigned)
	return ev
}

// redactionForClient turns the redaction stored in a redacted event's
// unsigned.redacted_because (the federation form, which has no event ID
// from room version 3 on) into the client form clients expect there.
func redactionForClient(fed json.RawMessage, eventID string) json.RawMessage {
	r := gjson.ParseBytes(fed)
	ev := clientEvent{
		Content:        json.RawMessage(`{}`),
		EventID:        eventID,
		OriginServerTS: r.Get("origin_server_ts").Int(),
		RoomID:         r.Get("room_id").Str,
		Redacts:        r.Get("redacts").Str,
		Sender:         r.Get("sender").Str,
		Type:           r.Get("type").Str,
		Unsigned:       json.RawMessage(`{}`),
	}
	if c := r.Get("content"); c.IsObject() {
		ev.Content = json.RawMessage(c.Raw)
	}
	if ev.Redacts == "" {
		ev.Redacts = r.Get("content.redacts").Str
	}
	out, _ := json.Marshal(ev)
	return out
}

// formatEvents formats every event, never returning nil (a JSON [] rather
// than null).
func formatEvents(recs []*storage.EventRecord) []*clientEvent {
	out := make([]*clientEvent, 0, len(recs))
	for _, r := range recs {
		out = append(out, formatEvent(r))
	}
	return out
}
