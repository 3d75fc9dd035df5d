package push

// Which thread an event's notification counts in (receipts module,
// "Threaded read receipts"): an m.thread relation names the thread root;
// other relations (a reaction, an edit) are followed to their parent, at
// most three hops, as the spec recommends; everything else, thread roots
// included, is the main timeline.

import (
	"context"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

const maxThreadHops = 3

func threadOf(ctx context.Context, tx *storage.Tx, rec *storage.EventRecord) (string, error) {
	json := rec.JSON
	for range maxThreadHops {
		rel := gjson.GetBytes(json, `content.m\.relates_to`)
		parent := rel.Get("event_id")
		if !rel.IsObject() || parent.Type != gjson.String || parent.Str == "" {
			return storage.MainThread, nil
		}
		if rel.Get("rel_type").Str == "m.thread" {
			return parent.Str, nil
		}
		if rel.Get("rel_type").Type != gjson.String {
			// m.in_reply_to alone is not a relation.
			return storage.MainThread, nil
		}
		recs, err := tx.EventsByID(ctx, []string{parent.Str})
		if err != nil {
			return "", err
		}
		if len(recs) == 0 || recs[0].RoomID != rec.RoomID {
			return storage.MainThread, nil
		}
		json = recs[0].JSON
	}
	return storage.MainThread, nil
}
