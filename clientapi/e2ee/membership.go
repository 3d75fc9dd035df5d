package e2ee

// A remote user's cached device list is trusted only while they share a
// room with one of our users: their server sends updates only then. A
// durable, shared consumer of the roomserver's output (every process with
// this service runs it under one name; each message goes to one of them)
// looks at every leave, kick and ban, and marks stale the cached lists of
// the room's members who no longer share a room with us, so that a later
// query asks their server and the list is fetched again, whatever changed
// meanwhile. The update is idempotent, so a redelivery is harmless.

import (
	"context"
	"fmt"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
)

// membershipsDurable is the consumer's name on the bus.
const membershipsDurable = "e2ee_device_lists"

// membershipsBatch bounds the messages one handler call takes. Nearly all
// of them are messages and other events this consumer ignores, so taking
// them in batches, acknowledged together, saves a round trip to the bus
// for each.
const membershipsBatch = 256

func (s *Service) startMembershipConsumer(ctx context.Context) error {
	if s.bus == nil {
		return nil
	}
	// The consumer outlives ctx (the start-up's): it runs until Close.
	c, err := s.bus.ConsumeBatches(context.WithoutCancel(ctx), bus.ConsumerConfig{
		Stream:         roomserver.OutputStream,
		Durable:        membershipsDurable,
		FilterSubjects: []string{roomserver.OutputSubject},
		MaxDeliver:     1000,
	}, membershipsBatch, s.onRoomOutputs)
	if err != nil {
		return fmt.Errorf("e2ee: %w", err)
	}
	s.members = c
	return nil
}

// onRoomOutputs handles a batch of the roomserver's output in stream
// order. An error has the whole batch delivered again, which is harmless:
// marking lists stale is idempotent.
func (s *Service) onRoomOutputs(ctx context.Context, msgs []*bus.Message) error {
	for _, msg := range msgs {
		if err := s.onRoomOutput(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// onRoomOutput handles one output message: a leave or ban marks stale the
// lists of the room's remote members who no longer share a room with us.
// A malformed message is logged and skipped.
func (s *Service) onRoomOutput(ctx context.Context, msg *bus.Message) error {
	outs, err := roomserver.DecodeOutput(msg.Data)
	if err != nil {
		s.logger.Error("malformed roomserver output message; skipped", "seq", msg.Sequence, "err", err)
		return nil
	}
	for _, out := range outs {
		if out.Type != "m.room.member" || out.StateKey == nil || (out.Membership != "leave" && out.Membership != "ban") {
			continue
		}
		n, err := s.db.MarkUnsharedRemoteDeviceListsStale(ctx, out.RoomID, s.serverName)
		if err != nil {
			return fmt.Errorf("e2ee: %s: %w", out.EventID, err)
		}
		if n > 0 {
			s.logger.Debug("cached device lists no longer kept up to date", "room", out.RoomID, "count", n)
		}
	}
	return nil
}
