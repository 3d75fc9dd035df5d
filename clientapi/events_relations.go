package clientapi

// Bundled aggregations for GET /rooms/{roomId}/event/{eventId}
// (client-server-api "Aggregations of child events"), computed by
// syncapi/relations as on every other read path.

import (
	"context"
	"errors"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/relations"
)

// eventRelations returns the aggregations of ev as userID may see them.
func (a *API) eventRelations(ctx context.Context, userID string, ev *storage.EventRecord) (map[int64]*clientevent.Relations, error) {
	upto, err := a.db.StreamPos(ctx)
	if err != nil {
		return nil, err
	}
	visible, err := relations.LoadRanges(ctx, a.db, ev.RoomNID, userID, upto)
	if err != nil {
		return nil, err
	}
	ignored := map[string]bool{}
	content, err := a.db.GetAccountData(ctx, userID, "", "m.ignored_user_list")
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	gjson.GetBytes(content, "ignored_users").ForEach(func(k, _ gjson.Result) bool {
		ignored[k.Str] = true
		return true
	})
	return relations.Load(ctx, a.db, relations.Request{UserID: userID, Ignored: ignored, Rooms: []relations.Scope{{
		RoomNID: ev.RoomNID, Events: []*storage.EventRecord{ev}, Visible: visible,
	}}})
}
