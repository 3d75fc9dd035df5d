package bus

import (
	"encoding/json"
	"fmt"
)

// TypingSubject is the core NATS subject (without the namespace) of typing
// changes: a local user's, published by the process that served PUT
// /typing, and a remote user's, published by the federation process that
// received the m.typing EDU. Every sync process applies them to its
// in-memory table; the federation sender sends the local users' on to the
// other servers in the room.
const TypingSubject = "sync.typing"

// TypingUpdate is one typing change.
type TypingUpdate struct {
	RoomID string `json:"room_id"`
	UserID string `json:"user_id"`
	Typing bool   `json:"typing"`
	// DeadlineMS is when the typing stops by itself (ms since the Unix
	// epoch); unused when Typing is false.
	DeadlineMS int64 `json:"deadline_ms,omitempty"`
}

// PublishTyping publishes u on TypingSubject. Like NotifySync, it does not
// wait for the server: typing is not stored, and a lost change expires at
// its deadline anyway.
func PublishTyping(b *Bus, u TypingUpdate) error {
	data, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("bus: typing update: %w", err)
	}
	if err := b.nc.Publish(b.Subject(TypingSubject), data); err != nil {
		return fmt.Errorf("bus: publish typing update: %w", err)
	}
	return nil
}
