package clientapi

// Relationships on the client API: the send-side checks the spec asks of
// new relations ("Avoiding duplicate annotations", "Validation of m.thread
// relationships"), and the bundled aggregations of GET
// /rooms/{roomId}/event/{eventId} ("Aggregations of child events"),
// computed by syncapi/relations as on every other read path.

import (
	"context"
	"errors"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
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

// codeDuplicateAnnotation is event_annotations.md's errcode for a second
// identical annotation.
const codeDuplicateAnnotation = "M_DUPLICATE_ANNOTATION"

// checkRelation refuses an event the spec says a server should not let a
// client send: an annotation its sender already made (same parent, event
// type and key, not redacted), and a thread started from an event that is
// itself the child of a relationship (threads do not nest), for which
// threading.md names no errcode and asks for 400 M_UNKNOWN. A retry of the
// transaction that sent the annotation passes, so that it gets the first
// event's ID back.
func (a *API) checkRelation(ctx context.Context, roomID, evType string, txn *roomserver.TxnKey, content []byte) error {
	rel := gjson.GetBytes(content, `m\.relates_to`)
	relType, parent := rel.Get("rel_type"), rel.Get("event_id")
	if relType.Type != gjson.String || parent.Type != gjson.String {
		return nil
	}
	switch relType.Str {
	case relations.RelAnnotation:
		key := rel.Get("key")
		if key.Type != gjson.String {
			return nil
		}
		same, err := a.db.SameAnnotation(ctx, storage.Annotation{
			RoomID: roomID, RelatesTo: parent.Str, Sender: txn.UserID, EventType: evType, Key: key.Str,
		})
		if err != nil || same == "" {
			return err
		}
		txnIDs, err := a.db.TxnIDs(ctx, txn.UserID, txn.DeviceID, []string{same})
		if err != nil {
			return err
		}
		if txnIDs[same] != txn.TxnID {
			return httputil.NewError(http.StatusBadRequest, codeDuplicateAnnotation,
				"you already sent this annotation to that event")
		}
	case relations.RelThread:
		// A parent not (yet) known here may still be one of another
		// server's: only what is known is checked.
		recs, err := a.db.EventsByID(ctx, []string{parent.Str})
		if err != nil {
			return err
		}
		if len(recs) == 1 && recs[0].RoomID == roomID &&
			gjson.GetBytes(recs[0].JSON, `content.m\.relates_to.rel_type`).Exists() {
			return httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown,
				"cannot start a thread from an event with a relation")
		}
	}
	return nil
}
