package bus

import (
	"context"
	"encoding/json"
	"fmt"
)

// SyncNotifySubject is the core NATS subject (without the namespace) of
// sync wake-ups. They are not stored: /sync reads everything it returns from
// the database (or, for typing, from the message that carries it), and a
// wake-up only tells the sync processes to look again now rather than when
// the long-poll times out.
const SyncNotifySubject = "sync.notify"

// SyncNotification wakes the /sync long-polls that may have something new to
// return. Every writer of something /sync returns, other than room events
// (which sync reads from the roomserver's output stream), publishes one
// after its transaction commits: receipts, account data (tags, ignored
// users, read markers), presence, typing.
type SyncNotification struct {
	// Pos is the stream position the change was committed at
	// (storage.(*Tx).NextStreamPos), or 0 for changes that have none
	// (typing). Waiters already past Pos are not woken.
	Pos int64 `json:"pos"`
	// RoomID wakes every local user in the room (receipts, typing).
	RoomID string `json:"room_id,omitempty"`
	// UserIDs wakes these users whatever their rooms (account data,
	// presence watchers, a membership change of theirs).
	UserIDs []string `json:"user_ids,omitempty"`
	// Kind says what changed, so a woken /sync can skip looking at the
	// rest; one of the SyncKind values, or "" for "anything".
	Kind string `json:"kind,omitempty"`
}

// Kinds of SyncNotification.
const (
	SyncKindReceipt     = "receipt"
	SyncKindAccountData = "account_data"
	SyncKindPresence    = "presence"
	SyncKindTyping      = "typing"
	SyncKindEvent       = "event"
)

// NotifySync publishes n on SyncNotifySubject. It does not wait for the
// server: a core NATS publish is buffered and sent at once, and a lost
// wake-up costs only latency (the long-poll still returns the change on its
// next call), never data.
func NotifySync(ctx context.Context, b *Bus, n SyncNotification) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("bus: sync notification: %w", err)
	}
	if err := b.nc.Publish(b.Subject(SyncNotifySubject), data); err != nil {
		return fmt.Errorf("bus: publish sync notification: %w", err)
	}
	return nil
}
