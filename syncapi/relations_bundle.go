package syncapi

// Bundled aggregations (syncapi/relations) on the read paths of this
// package: /messages, /context, /relations, /threads, /search, and the
// timelines of /sync that are limited (the spec asks for them there only:
// a client that got a whole gap has seen every child already).

import (
	"context"

	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/relations"
)

// ranges returns the stream positions up to upto of the message events v
// lets the user see.
func (v *roomVisibility) ranges(upto int64) []storage.PosRange {
	conv := func(list []stateAt) []relations.StateChange {
		out := make([]relations.StateChange, len(list))
		for i, s := range list {
			out[i] = relations.StateChange{Pos: s.pos, Value: s.value}
		}
		return out
	}
	return relations.Ranges(conv(v.visibility), conv(v.memberships), v.joinedNow, upto)
}

// bundleRoom sets opts.Relations for evs, events of the room rr reads.
func (a *API) bundleRoom(ctx context.Context, opts *clientevent.Options, userID string, ignored map[string]bool, rr *roomReader, evs []*storage.EventRecord) error {
	rels, err := relations.Load(ctx, a.db, relations.Request{UserID: userID, Ignored: ignored, Rooms: []relations.Scope{{
		RoomNID: rr.roomNID, Events: evs, Visible: rr.vis.ranges(rr.upto),
	}}})
	if err != nil {
		return err
	}
	opts.Relations = rels
	return nil
}

// bundleSync sets opts.Relations for the limited timelines of a sync.
func (b *syncBuilder) bundleSync(opts *clientevent.Options) error {
	req := relations.Request{UserID: b.req.userID, Ignored: b.ignored}
	for _, r := range b.rooms {
		if !r.limited || len(r.timeline) == 0 {
			continue
		}
		scope := relations.Scope{RoomNID: r.m.RoomNID, Events: r.timeline}
		if r.section == "join" && r.m.EventPos < r.timeline[0].StreamPos {
			// Joined since before the timeline, and so before its
			// events' children: the user sees every child up to now.
			scope.Visible = []storage.PosRange{{After: r.m.EventPos, Upto: b.upto}}
		} else {
			v, err := b.a.loadVisibility(b.ctx, r.m.RoomNID, b.req.userID, b.upto)
			if err != nil {
				return err
			}
			v.joinedNow = r.section == "join"
			scope.Visible = v.ranges(b.upto)
		}
		req.Rooms = append(req.Rooms, scope)
	}
	if len(req.Rooms) == 0 {
		return nil
	}
	rels, err := relations.Load(b.ctx, b.a.db, req)
	if err != nil {
		return err
	}
	opts.Relations = rels
	return nil
}
