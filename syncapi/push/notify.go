package push

// The notifier: each room event of the output stream evaluated for the
// local members of its room (push module, "Server behaviour").

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// handle processes one message of the output stream.
func (s *Service) handle(ctx context.Context, msg *bus.Message) error {
	var out roomserver.OutputEvent
	if err := json.Unmarshal(msg.Data, &out); err != nil || out.EventID == "" {
		return bus.Permanent(fmt.Errorf("push: output message %d: malformed", msg.Sequence))
	}
	stored, err := s.process(ctx, &out)
	if err != nil {
		return fmt.Errorf("push: event %s: %w", out.EventID, err)
	}
	s.advance(out.StreamPos, stored)
	return nil
}

// process evaluates one event and records what it gives; stored reports
// whether the progress was stored with it.
func (s *Service) process(ctx context.Context, out *roomserver.OutputEvent) (stored bool, err error) {
	recs, err := s.cfg.DB.EventsByID(ctx, []string{out.EventID})
	if err != nil {
		return false, err
	}
	if len(recs) == 0 {
		s.log.Warn("an event of the output stream is not stored", "event_id", out.EventID)
		return false, nil
	}
	rec := recs[0]
	if rec.Rejected || rec.SoftFailed || rec.StreamPos <= 0 {
		return false, nil
	}
	localSender := ""
	if s.local(rec.Sender) {
		localSender = rec.Sender
	}
	room, err := s.rooms.get(ctx, rec)
	if err != nil {
		return false, err
	}
	// The events after this one see the room with it.
	defer s.rooms.apply(room, rec)
	targets, invitee := s.targets(rec, room)
	if len(targets) == 0 && localSender == "" {
		return false, nil
	}

	var notify []storage.PushNotify
	if len(targets) > 0 {
		if notify, err = s.evaluate(ctx, rec, room, targets); err != nil {
			return false, err
		}
	}
	if len(notify) == 0 && localSender == "" {
		return false, nil
	}
	thread, err := s.threadOf(ctx, rec)
	if err != nil {
		return false, err
	}
	recorded, err := s.cfg.DB.RecordPush(ctx, storage.PushEvent{
		RoomID: rec.RoomID, EventID: rec.EventID, EventPos: rec.StreamPos, ThreadID: thread,
		TS: s.cfg.Now().UnixMilli(), Notify: notify, LocalSender: localSender,
	})
	if err != nil {
		return false, err
	}
	if recorded.Changed {
		// The room's local members (and an invitee, who is not one yet)
		// may have new counts: wake their syncs. (Their syncs are woken
		// for the event once the notifier is past it anyway; this one is
		// for a sync process that did not wait.)
		n := bus.SyncNotification{Pos: rec.StreamPos, RoomID: rec.RoomID}
		if invitee != "" {
			n.UserIDs = []string{invitee}
		}
		if err := bus.NotifySync(ctx, s.cfg.Bus, n); err != nil {
			s.log.Warn("cannot publish a sync notification", "err", err)
		}
	}
	for _, id := range recorded.Pushers {
		s.kick(id)
	}
	return recorded.Wrote, nil
}

// targets are the users to evaluate the event for: the room's local joined
// members and the local target of an invite (invitee), never the sender.
func (s *Service) targets(rec *storage.EventRecord, room *roomInfo) (out []string, invitee string) {
	if room != nil {
		out = slices.DeleteFunc(room.localMembers(), func(u string) bool { return u == rec.Sender })
	}
	if rec.Type == "m.room.member" && rec.StateKey != nil && rec.Membership == "invite" {
		u := *rec.StateKey
		if s.local(u) && u != rec.Sender && (room == nil || !room.isLocalMember(u)) {
			out = append(out, u)
			invitee = u
		}
	}
	return out, invitee
}

// evaluate runs each target's rules on the event and returns the
// notifications.
func (s *Service) evaluate(ctx context.Context, rec *storage.EventRecord, room *roomInfo, targets []string) ([]storage.PushNotify, error) {
	ev, err := pushrules.NewEvent(rec.JSON)
	if err != nil {
		s.log.Warn("an event does not parse for push rules", "event_id", rec.EventID, "err", err)
		return nil, nil
	}
	rules, err := s.users.get(ctx, targets)
	if err != nil {
		return nil, err
	}
	rc := &pushrules.RoomContext{}
	if room != nil {
		rc = room.context(ctx, s, rec.Sender)
	}
	// Results are shared by many users: encode each once.
	type encoded struct{ actions, tweaks []byte }
	enc := map[*pushrules.Result]encoded{}
	var out []storage.PushNotify
	for i, u := range targets {
		ur := rules[i]
		if ur.ignored[rec.Sender] {
			continue
		}
		r := ur.compiled.Evaluate(ev, u, rc)
		if r == nil || !r.Notify {
			continue
		}
		e, ok := enc[r]
		if !ok {
			e.actions, _ = json.Marshal(r.Actions)
			e.tweaks, _ = json.Marshal(r.Tweaks)
			enc[r] = e
		}
		out = append(out, storage.PushNotify{UserID: u, Actions: e.actions, Tweaks: e.tweaks, Highlight: r.Highlight})
	}
	return out, nil
}

func (s *Service) local(userID string) bool {
	return roomserver.UserServer(userID) == s.cfg.ServerName
}
