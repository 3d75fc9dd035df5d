package federation

// Received EDUs (server-server-api "EDUs"): the EDUs of a /send
// transaction go, one after the other in their order, to the handler
// registered for their edu_type. Typing, receipts and presence are built
// in (edu_typing.go, edu_receipt.go, edu_presence.go); other components
// register theirs with HandleEDU (internal/server wires them), so that this
// package need not know them. EDUs of a type nobody handles are ignored,
// as the spec asks of unknown EDUs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// EDUHandler applies one received EDU of the type it is registered for.
// origin is the server that signed the transaction (the request's
// authenticated origin); content is the EDU's content, a JSON object, not
// yet checked further.
//
// The handler must check that origin speaks for what the EDU is about (a
// user of origin's, a room origin is in) and ignore, returning nil, what is
// malformed or not origin's to say: a remote server's mistakes are not
// this server's errors. It returns an error only for a fault of this
// server (its database, its bus): the transaction is then answered 500
// and the origin sends it again, so nothing it carried is lost. EDUs of a
// transaction are handled one at a time, in order, alongside its PDUs;
// ctx ends when the transaction's deadline passes.
type EDUHandler func(ctx context.Context, origin string, content json.RawMessage) error

// eduHandlers is the registry of EDU handlers by edu_type.
type eduHandlers struct {
	mu     sync.RWMutex
	byType map[string]EDUHandler
}

func (r *eduHandlers) get(eduType string) EDUHandler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byType[eduType]
}

// HandleEDU registers h for the EDUs of eduType received in /send
// transactions, replacing the handler registered before for that type
// (the built-in m.typing, m.receipt and m.presence ones included). Register
// before serving: EDUs received before are ignored.
func (a *API) HandleEDU(eduType string, h EDUHandler) {
	a.edus.mu.Lock()
	defer a.edus.mu.Unlock()
	if a.edus.byType == nil {
		a.edus.byType = map[string]EDUHandler{}
	}
	if h == nil {
		delete(a.edus.byType, eduType)
		return
	}
	a.edus.byType[eduType] = h
}

// registerBuiltinEDUs registers the EDU types this package handles itself.
func (a *API) registerBuiltinEDUs() {
	a.HandleEDU(eduTyping, a.receiveTyping)
	a.HandleEDU(eduReceipt, a.receiveReceipts)
	a.HandleEDU(eduPresence, a.receivePresence)
}

// handleEDUs hands each EDU of a transaction to its handler, in order.
// Its error is a fault of this server (see EDUHandler).
func (a *API) handleEDUs(ctx context.Context, origin string, edus []json.RawMessage) error {
	for i, raw := range edus {
		typ := gjson.GetBytes(raw, "edu_type")
		content := gjson.GetBytes(raw, "content")
		if typ.Type != gjson.String || !content.IsObject() {
			httputil.Logger(ctx).InfoContext(ctx, "ignored an EDU without edu_type or content", "origin", origin, "index", i)
			continue
		}
		h := a.edus.get(typ.Str)
		if h == nil {
			httputil.Logger(ctx).DebugContext(ctx, "ignored an EDU of a type not handled", "origin", origin, "edu_type", typ.Str)
			continue
		}
		if err := h(ctx, origin, json.RawMessage(content.Raw)); err != nil {
			return fmt.Errorf("%s EDU from %s: %w", typ.Str, origin, err)
		}
	}
	return nil
}

// ignoreEDU logs an EDU, or a part of one, that is not applied.
func ignoreEDU(ctx context.Context, origin, eduType, why string, args ...any) {
	httputil.Logger(ctx).InfoContext(ctx, "ignored part of an EDU: "+why,
		append([]any{"origin", origin, "edu_type", eduType}, args...)...)
}

// roomAcceptsEDUsFrom reports whether EDUs about roomID from origin are to
// be applied: this server is in the room (one of its users is joined),
// origin has a user joined to it too, and the room's m.room.server_acl
// allows origin.
func (a *API) roomAcceptsEDUsFrom(ctx context.Context, roomID, origin string) (bool, error) {
	members, err := a.rs.JoinedMembers(ctx, roomID)
	if errors.Is(err, roomserver.ErrRoomNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var us, them bool
	for _, m := range members {
		switch roomserver.UserServer(m) {
		case a.cfg.ServerName:
			us = true
		case origin:
			them = true
		}
	}
	if !us || !them {
		return false, nil
	}
	acl, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.server_acl"})
	if err != nil {
		return false, err
	}
	return acl == nil || roomserver.ServerACLAllows(acl.Content(), origin), nil
}
