package sender

// What the sender hears on the bus besides the room output stream: EDUs
// queued by other processes (eduSubject), local users' typing
// (bus.TypingSubject) and the wake-ups of receipt and presence writes
// (bus.SyncNotifySubject), which it turns into EDUs (typing.go,
// receipts.go, presence.go).

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/internal/bus"
)

// startEDUFeeds subscribes to the subjects and starts the receipt and
// presence loops.
func (s *Sender) startEDUFeeds(ctx context.Context) error {
	if err := s.receipts.init(ctx); err != nil {
		return err
	}
	if err := s.presence.init(ctx); err != nil {
		return err
	}
	nc := s.cfg.Bus.Conn()
	for subject, h := range map[string]nats.MsgHandler{
		eduSubject:            s.onEDUMessage,
		bus.TypingSubject:     s.typing.onUpdate,
		bus.SyncNotifySubject: s.onSyncNotify,
	} {
		sub, err := nc.Subscribe(s.cfg.Bus.Subject(subject), h)
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", subject, err)
		}
		s.mu.Lock()
		s.subs = append(s.subs, sub)
		s.mu.Unlock()
	}
	// The subscriptions reach the server before Start returns, so that
	// nothing written after it goes unheard.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.wg.Add(2)
	go s.receipts.run()
	go s.presence.run()
	return nil
}

func (s *Sender) onSyncNotify(m *nats.Msg) {
	var n bus.SyncNotification
	if err := json.Unmarshal(m.Data, &n); err != nil {
		return
	}
	switch n.Kind {
	case bus.SyncKindReceipt:
		signal(s.receipts.wake)
	case bus.SyncKindPresence:
		signal(s.presence.wake)
	case "":
		signal(s.receipts.wake)
		signal(s.presence.wake)
	}
}
