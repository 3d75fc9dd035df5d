package syncapi

// What feeds the notifier and the typing table: the roomserver's output
// stream (room events, including memberships), the sync.notify wake-ups
// (receipts, account data, presence) and the typing changes, all from the
// bus, so that every process sees every process's writes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
)

// subscribe starts the three feeds and returns the function that stops
// them.
func (a *API) subscribe(ctx context.Context) (stop func(), err error) {
	nc := a.bus.Conn()
	var subs []*nats.Subscription
	unsubscribe := func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	sub, err := nc.Subscribe(a.bus.Subject(bus.SyncNotifySubject), a.onSyncNotify)
	if err != nil {
		return nil, fmt.Errorf("syncapi: subscribe to %s: %w", bus.SyncNotifySubject, err)
	}
	subs = append(subs, sub)
	sub, err = nc.Subscribe(a.bus.Subject(typingSubject), a.onTyping)
	if err != nil {
		unsubscribe()
		return nil, fmt.Errorf("syncapi: subscribe to %s: %w", typingSubject, err)
	}
	subs = append(subs, sub)
	// Subscriptions must reach the server before New returns, or a write
	// made right after start-up could go unnoticed.
	if err := nc.Flush(); err != nil {
		unsubscribe()
		return nil, fmt.Errorf("syncapi: subscribe: %w", err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.followOutput(runCtx)
	}()
	return func() {
		unsubscribe()
		cancel()
		wg.Wait()
	}, nil
}

func (a *API) onSyncNotify(m *nats.Msg) {
	var n bus.SyncNotification
	if err := json.Unmarshal(m.Data, &n); err != nil {
		a.logger.Warn("malformed sync notification", "err", err)
		return
	}
	if n.Kind == bus.SyncKindPresence {
		a.notifier.notifySoon(n.Pos, n.RoomID, n.UserIDs)
		return
	}
	a.notifier.notify(n.Pos, n.RoomID, n.UserIDs)
}

func (a *API) onTyping(m *nats.Msg) {
	var u typingUpdate
	if err := json.Unmarshal(m.Data, &u); err != nil || u.RoomID == "" || u.UserID == "" {
		a.logger.Warn("malformed typing update", "err", err)
		return
	}
	a.typing.apply(u)
}

// followOutput reads the roomserver's output stream from now on with an
// ordered (ephemeral) consumer: sync reads events from the database, so it
// needs only to hear of new ones, not to replay the past. It waits for the
// stream to exist and resubscribes if the consumer fails.
func (a *API) followOutput(ctx context.Context) {
	js := a.bus.JetStream()
	for ctx.Err() == nil {
		err := a.consumeOutput(ctx, js)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			a.logger.Warn("roomserver output stream: resubscribing", "err", err)
		}
		// Events may have been missed meanwhile: let every waiter look.
		a.notifier.wakeAll()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (a *API) consumeOutput(ctx context.Context, js jetstream.JetStream) error {
	stream, err := js.Stream(ctx, a.bus.StreamName(roomserver.OutputStream))
	if err != nil {
		return err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{a.bus.Subject(roomserver.OutputSubject)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return err
	}
	failed := make(chan error, 1)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		a.onOutput(msg.Data())
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrConnectionClosed) ||
			strings.Contains(err.Error(), "consumer deleted") {
			select {
			case failed <- err:
			default:
			}
		}
	}))
	if err != nil {
		return err
	}
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	case <-cc.Closed():
		return errors.New("consumer closed")
	}
}

func (a *API) onOutput(data []byte) {
	evs, err := roomserver.DecodeOutput(data)
	if err != nil {
		a.logger.Warn("malformed roomserver output", "err", err)
		return
	}
	for _, ev := range evs {
		if ev.RoomID == "" {
			a.logger.Warn("malformed roomserver output: an event without a room", "pos", ev.StreamPos)
			continue
		}
		var users []string
		if ev.Type == "m.room.member" && ev.StateKey != nil {
			a.notifier.membership(ev.RoomID, *ev.StateKey, ev.Membership)
			users = []string{*ev.StateKey}
		}
		a.notifier.notify(ev.StreamPos, ev.RoomID, users)
	}
}
