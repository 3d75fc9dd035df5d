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
	"encoding/json"
	"fmt"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
)

// membershipsDurable is the consumer's name on the bus.
const membershipsDurable = "e2ee_device_lists"

func (s *Service) startMembershipConsumer(ctx context.Context) error {
	if s.bus == nil {
		return nil
	}
	// The consumer outlives ctx (the start-up's): it runs until Close.
	c, err := s.bus.Consume(context.WithoutCancel(ctx), bus.ConsumerConfig{
		Stream:         roomserver.OutputStream,
		Durable:        membershipsDurable,
		FilterSubjects: []string{roomserver.OutputSubject},
		MaxDeliver:     1000,
	}, s.onRoomOutput)
	if err != nil {
		return fmt.Errorf("e2ee: %w", err)
	}
	s.members = c
	return nil
}

func (s *Service) onRoomOutput(ctx context.Context, msg *bus.Message) error {
	var out roomserver.OutputEvent
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		return bus.Permanent(fmt.Errorf("e2ee: output message %d: %w", msg.Sequence, err))
	}
	if out.Type != "m.room.member" || out.StateKey == nil || (out.Membership != "leave" && out.Membership != "ban") {
		return nil
	}
	n, err := s.db.MarkUnsharedRemoteDeviceListsStale(ctx, out.RoomID, s.serverName)
	if err != nil {
		return fmt.Errorf("e2ee: %s: %w", out.EventID, err)
	}
	if n > 0 {
		s.logger.Debug("cached device lists no longer kept up to date", "room", out.RoomID, "count", n)
	}
	return nil
}
