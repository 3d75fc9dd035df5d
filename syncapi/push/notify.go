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

// Bounds of one write: events of a burst are recorded in one transaction
// (the commit, not the work, bounds the rate of small writes), but not so
// many notifications that the transaction holds the rooms' locks long.
const (
	outputBatch        = 100
	maxBatchedNotified = 20000
)

// pending is an evaluated event waiting to be recorded.
type pending struct {
	pe      storage.PushEvent
	invitee string
}

// handle evaluates a burst of the output stream, in order, and records
// what it gives.
func (s *Service) handle(ctx context.Context, msgs []*bus.Message) error {
	var (
		batch    []pending
		notified int
		last     int64
	)
	for _, msg := range msgs {
		var out roomserver.OutputEvent
		if err := json.Unmarshal(msg.Data, &out); err != nil || out.EventID == "" {
			s.log.Error("malformed output message; skipped", "seq", msg.Sequence)
			continue
		}
		p, ok, err := s.process(ctx, &out)
		if err != nil {
			return fmt.Errorf("push: event %s: %w", out.EventID, err)
		}
		last = max(last, out.StreamPos)
		if !ok {
			continue
		}
		batch = append(batch, p)
		if notified += len(p.pe.Notify); notified >= maxBatchedNotified {
			if err := s.record(ctx, batch); err != nil {
				return err
			}
			batch, notified = nil, 0
		}
	}
	if err := s.record(ctx, batch); err != nil {
		return err
	}
	if last > 0 {
		s.advance(last)
	}
	return nil
}

// record writes a batch, then wakes the syncs concerned and the pushers.
func (s *Service) record(ctx context.Context, batch []pending) error {
	if len(batch) == 0 {
		return nil
	}
	pes := make([]storage.PushEvent, len(batch))
	for i, p := range batch {
		pes[i] = p.pe
	}
	recorded, wrote, err := s.cfg.DB.RecordPushes(ctx, pes)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if wrote {
		s.stored(pes[len(pes)-1].EventPos)
	}
	for i, r := range recorded {
		if r.Changed {
			// The room's local members (and an invitee, who is not one
			// yet) may have new counts: wake their syncs. (Their syncs
			// are woken for the event once the notifier is past it
			// anyway; this one is for a sync process that did not wait.)
			n := bus.SyncNotification{Pos: pes[i].EventPos, RoomID: pes[i].RoomID}
			if batch[i].invitee != "" {
				n.UserIDs = []string{batch[i].invitee}
			}
			if err := bus.NotifySync(ctx, s.cfg.Bus, n); err != nil {
				s.log.Warn("cannot publish a sync notification", "err", err)
			}
		}
		for _, id := range r.Pushers {
			s.kick(id)
		}
	}
	return nil
}

// process evaluates one event; ok is false when there is nothing to
// record.
func (s *Service) process(ctx context.Context, out *roomserver.OutputEvent) (p pending, ok bool, err error) {
	recs, err := s.cfg.DB.EventsByID(ctx, []string{out.EventID})
	if err != nil {
		return p, false, err
	}
	if len(recs) == 0 {
		s.log.Warn("an event of the output stream is not stored", "event_id", out.EventID)
		return p, false, nil
	}
	rec := recs[0]
	if rec.Rejected || rec.SoftFailed || rec.StreamPos <= 0 {
		return p, false, nil
	}
	localSender := ""
	if s.local(rec.Sender) {
		localSender = rec.Sender
	}
	room, err := s.rooms.get(ctx, rec)
	if err != nil {
		return p, false, err
	}
	// The events after this one see the room with it.
	defer s.rooms.apply(room, rec)
	targets, invitee := s.targets(rec, room)
	if len(targets) == 0 && localSender == "" {
		return p, false, nil
	}
	var notify []storage.PushNotify
	if len(targets) > 0 {
		if notify, err = s.evaluate(ctx, rec, room, targets); err != nil {
			return p, false, err
		}
	}
	if len(notify) == 0 && localSender == "" {
		return p, false, nil
	}
	thread, err := s.threadOf(ctx, rec)
	if err != nil {
		return p, false, err
	}
	return pending{
		pe: storage.PushEvent{
			RoomID: rec.RoomID, EventID: rec.EventID, EventPos: rec.StreamPos, ThreadID: thread,
			TS: s.cfg.Now().UnixMilli(), Notify: notify, LocalSender: localSender,
		},
		invitee: invitee,
	}, true, nil
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
