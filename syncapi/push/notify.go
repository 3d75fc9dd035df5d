package push

// The notifier: each room event of the output stream evaluated for the
// local members of its room (push module, "Server behaviour").

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// ObserveEvents evaluates new room events (roomserver.Observer), in
// order, and records their notifications in the roomserver's transaction
// tx, so that they commit with the events. done kicks the pushers that
// have pushes queued once committed, and forgets the rooms cached from the
// events when not.
func (s *Service) ObserveEvents(ctx context.Context, tx *storage.Tx, recs []*storage.EventRecord) (done func(committed bool), err error) {
	// Forget the rooms the events moved if this transaction (or this
	// call) fails: the cache would describe snapshots that were undone.
	forget := func(committed bool) {
		if !committed {
			s.rooms.clear()
		}
	}
	var pes []storage.PushEvent
	for _, rec := range recs {
		pe, ok, err := s.process(ctx, tx, rec)
		if err != nil {
			forget(false)
			return nil, fmt.Errorf("push: event %s: %w", rec.EventID, err)
		}
		if ok {
			pes = append(pes, pe)
		}
	}
	if len(pes) == 0 {
		return forget, nil
	}
	recorded, err := tx.RecordPushes(ctx, pes)
	if err != nil {
		forget(false)
		return nil, fmt.Errorf("push: %w", err)
	}
	var pushers []int64
	for _, r := range recorded {
		pushers = append(pushers, r.Pushers...)
	}
	return func(committed bool) {
		forget(committed)
		if committed {
			for _, id := range pushers {
				s.kick(id)
			}
		}
	}, nil
}

// process evaluates one event; ok is false when there is nothing to
// record.
func (s *Service) process(ctx context.Context, tx *storage.Tx, rec *storage.EventRecord) (pe storage.PushEvent, ok bool, err error) {
	localSender := ""
	if s.local(rec.Sender) {
		localSender = rec.Sender
	}
	room, err := s.rooms.get(ctx, tx, rec)
	if err != nil {
		return pe, false, err
	}
	// The events after this one see the room with it.
	defer s.rooms.apply(room, rec)
	withdraws, err := redacted(ctx, tx, rec)
	if err != nil {
		return pe, false, err
	}
	targets := s.targets(rec, room)
	if len(targets) == 0 && localSender == "" && withdraws == 0 {
		return pe, false, nil
	}
	var notify []storage.PushNotify
	if len(targets) > 0 {
		if notify, err = s.evaluate(ctx, tx, rec, room, targets); err != nil {
			return pe, false, err
		}
	}
	if len(notify) == 0 && localSender == "" && withdraws == 0 {
		return pe, false, nil
	}
	thread, err := threadOf(ctx, tx, rec)
	if err != nil {
		return pe, false, err
	}
	return storage.PushEvent{
		RoomID: rec.RoomID, EventID: rec.EventID, EventPos: rec.StreamPos, ThreadID: thread,
		TS: s.cfg.Now().UnixMilli(), Notify: notify, LocalSender: localSender, Withdraws: withdraws,
	}, true, nil
}

// redacted returns, when rec is a redaction that redacted an event of the
// room's timeline, that event's stream position, else 0. The roomserver
// has applied the redaction in this transaction, unless the redaction's
// sender could not redact it or the event is unknown here.
func redacted(ctx context.Context, tx *storage.Tx, rec *storage.EventRecord) (int64, error) {
	if rec.Type != "m.room.redaction" || rec.Redacts == "" {
		return 0, nil
	}
	targets, err := tx.EventsByID(ctx, []string{rec.Redacts})
	if err != nil || len(targets) == 0 {
		return 0, err
	}
	if t := targets[0]; t.RedactedBy == rec.EventID && t.StreamPos > 0 {
		return t.StreamPos, nil
	}
	return 0, nil
}

// targets are the users to evaluate the event for: the room's local joined
// members and the local target of an invite, never the sender.
func (s *Service) targets(rec *storage.EventRecord, room *roomInfo) (out []string) {
	if room != nil {
		out = slices.DeleteFunc(room.localMembers(), func(u string) bool { return u == rec.Sender })
	}
	if rec.Type == "m.room.member" && rec.StateKey != nil && rec.Membership == "invite" {
		u := *rec.StateKey
		if s.local(u) && u != rec.Sender && (room == nil || !room.isLocalMember(u)) {
			out = append(out, u)
		}
	}
	return out
}

// evaluate runs each target's rules on the event and returns the
// notifications.
func (s *Service) evaluate(ctx context.Context, tx *storage.Tx, rec *storage.EventRecord, room *roomInfo, targets []string) ([]storage.PushNotify, error) {
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
		rc = room.context(ctx, s, tx, rec.Sender)
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
