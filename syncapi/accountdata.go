package syncapi

// Account data (client-server-api "Client Config"), room tags ("Room
// Tagging") and, through the m.ignored_user_list account data type,
// "Ignoring Users". Each change takes a stream position and wakes the
// user's syncs.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// serverManagedTypes are account data types clients may read but only the
// server may write (the spec's "Server Behaviour": a 405 M_BAD_JSON).
var serverManagedTypes = map[string]bool{"m.fully_read": true, "m.push_rules": true}

// maxTagLength is the spec's limit on a tag name, in bytes.
const maxTagLength = 255

// putAccountData serves PUT /user/{userId}/account_data/{type} and
// PUT /user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *API) putAccountData(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID, roomID, dataType, err := accountDataPath(r, d, "add account data")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if dataType == "" {
		httputil.WriteError(w, r, httputil.InvalidParam("the account data type must not be empty"))
		return
	}
	if serverManagedTypes[dataType] {
		httputil.WriteError(w, r, httputil.NewError(http.StatusMethodNotAllowed, httputil.CodeBadJSON,
			"cannot set "+dataType+" through this API"))
		return
	}
	body, err := httputil.ReadJSONObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.setAccountData(r.Context(), userID, roomID, dataType, body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	writeEmpty(w, r)
}

// setAccountData stores one entry and wakes the user's syncs.
func (a *API) setAccountData(ctx context.Context, userID, roomID, dataType string, content []byte) error {
	var pos int64
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		var err error
		pos, err = tx.SetAccountData(ctx, userID, roomID, dataType, content)
		return err
	})
	if err != nil {
		return err
	}
	a.notifyAccountData(ctx, userID, pos)
	return nil
}

func (a *API) notifyAccountData(ctx context.Context, userID string, pos int64) {
	if err := bus.NotifySync(ctx, a.bus, bus.SyncNotification{
		Pos: pos, UserIDs: []string{userID}, Kind: bus.SyncKindAccountData,
	}); err != nil {
		a.logger.Warn("cannot publish a sync notification", "err", err)
	}
}

// accountDataPath reads the user, the room ("" for global account data)
// and the type of an account data path, which the user must be d's
// (action says what was refused).
func accountDataPath(r *http.Request, d *auth.Device, action string) (userID, roomID, dataType string, err error) {
	userID, dataType = httputil.PathVar(r, "userId"), httputil.PathVar(r, "type")
	if err := requireSelf(d, userID, action); err != nil {
		return "", "", "", err
	}
	if _, inRoom := mux.Vars(r)["roomId"]; inRoom {
		if roomID, err = roomIDParam(r); err != nil {
			return "", "", "", err
		}
	}
	return userID, roomID, dataType, nil
}

// getAccountData serves GET /user/{userId}/account_data/{type} and
// GET /user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *API) getAccountData(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID, roomID, dataType, err := accountDataPath(r, d, "read account data")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	content, err := a.db.GetAccountData(r.Context(), userID, roomID, dataType)
	if errors.Is(err, storage.ErrNotFound) {
		httputil.WriteError(w, r, httputil.NotFound("no account data of type "+dataType))
		return
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteRawJSON(w, http.StatusOK, content)
}

// getTags serves GET /user/{userId}/rooms/{roomId}/tags.
func (a *API) getTags(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID, roomID, err := selfInRoom(r, d, "read tags")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	content, err := a.db.GetAccountData(r.Context(), userID, roomID, "m.tag")
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]json.RawMessage{"tags": tagsOf(content)})
}

// tagsOf returns the tags object of m.tag content ({} when absent or
// malformed).
func tagsOf(content []byte) json.RawMessage {
	if t := gjson.GetBytes(content, "tags"); t.IsObject() {
		return json.RawMessage(t.Raw)
	}
	return json.RawMessage(`{}`)
}

// putTag serves PUT /user/{userId}/rooms/{roomId}/tags/{tag}.
func (a *API) putTag(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID, roomID, err := selfInRoom(r, d, "add tags")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	tag := httputil.PathVar(r, "tag")
	if tag == "" || len(tag) > maxTagLength {
		httputil.WriteError(w, r, httputil.InvalidParam("a tag must be 1 to 255 bytes long"))
		return
	}
	body, err := httputil.ReadJSONObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if order := gjson.GetBytes(body, "order"); order.Exists() && order.Type != gjson.Number {
		httputil.WriteError(w, r, httputil.BadJSON(`"order" must be a number`))
		return
	}
	if err := a.updateTags(r.Context(), userID, roomID, func(tags map[string]json.RawMessage) {
		tags[tag] = json.RawMessage(body)
	}); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	writeEmpty(w, r)
}

// deleteTag serves DELETE /user/{userId}/rooms/{roomId}/tags/{tag}.
func (a *API) deleteTag(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID, roomID, err := selfInRoom(r, d, "remove tags")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	tag := httputil.PathVar(r, "tag")
	if err := a.updateTags(r.Context(), userID, roomID, func(tags map[string]json.RawMessage) {
		delete(tags, tag)
	}); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	writeEmpty(w, r)
}

// updateTags changes the room's m.tag account data in one transaction, so
// two devices tagging at once do not lose a tag.
func (a *API) updateTags(ctx context.Context, userID, roomID string, change func(map[string]json.RawMessage)) error {
	var pos int64
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		content, err := tx.GetAccountData(ctx, userID, roomID, "m.tag")
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		tags := map[string]json.RawMessage{}
		_ = json.Unmarshal(tagsOf(content), &tags)
		change(tags)
		newContent, err := json.Marshal(map[string]any{"tags": tags})
		if err != nil {
			return err
		}
		pos, err = tx.SetAccountData(ctx, userID, roomID, "m.tag", newContent)
		return err
	})
	if err != nil {
		return err
	}
	a.notifyAccountData(ctx, userID, pos)
	return nil
}

// ignoredUsers returns the users userID ignores (m.ignored_user_list).
func (a *API) ignoredUsers(ctx context.Context, userID string) (map[string]bool, error) {
	content, err := a.db.GetAccountData(ctx, userID, "", "m.ignored_user_list")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseIgnoredUsers(content), nil
}

func parseIgnoredUsers(content []byte) map[string]bool {
	var out map[string]bool
	gjson.GetBytes(content, "ignored_users").ForEach(func(k, _ gjson.Result) bool {
		if out == nil {
			out = map[string]bool{}
		}
		out[k.Str] = true
		return true
	})
	return out
}
