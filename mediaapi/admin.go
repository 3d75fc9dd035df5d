package mediaapi

// Media administration, with the paths and answers of Synapse's admin API
// (docs "Media Admin API" and "Purge Remote Media API"), which admin
// tools already speak. Server administrators only.
//
//	POST   /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}      {}
//	POST   /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}    {}
//	POST   /_synapse/admin/v1/room/{roomId}/media/quarantine              {"num_quarantined": n}
//	POST   /_synapse/admin/v1/quarantine_media/{roomId}                   (the same, older path)
//	POST   /_synapse/admin/v1/user/{userId}/media/quarantine              {"num_quarantined": n}
//	GET    /_synapse/admin/v1/room/{roomId}/media                         {"local": [mxc], "remote": [mxc]}
//	DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}                {"deleted_media": [id], "total": 1}
//	DELETE /_synapse/admin/v1/users/{userId}/media                        {"deleted_media": [...], "total": n}
//	DELETE /_synapse/admin/v1/room/{roomId}/media                         (Myelin's: the room's media)
//	POST   /_synapse/admin/v1/purge_media_cache?before_ts=<ms>            {"deleted": n}

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

const adminPrefix = "/_synapse/admin/v1"

func (a *API) registerAdmin(r *mux.Router) {
	h := func(path, method string, fn func(http.ResponseWriter, *http.Request, *auth.Device)) {
		r.HandleFunc(adminPrefix+path, a.auth.Required(adminOnly(fn))).Methods(method)
	}
	h("/media/quarantine/{serverName}/{mediaId}", http.MethodPost, a.adminQuarantineOne(true))
	h("/media/unquarantine/{serverName}/{mediaId}", http.MethodPost, a.adminQuarantineOne(false))
	h("/room/{roomId}/media/quarantine", http.MethodPost, a.adminQuarantineRoom)
	h("/quarantine_media/{roomId}", http.MethodPost, a.adminQuarantineRoom)
	h("/user/{userId}/media/quarantine", http.MethodPost, a.adminQuarantineUser)
	h("/room/{roomId}/media", http.MethodGet, a.adminListRoom)
	h("/media/{serverName}/{mediaId}", http.MethodDelete, a.adminDeleteOne)
	h("/users/{userId}/media", http.MethodDelete, a.adminDeleteUser)
	h("/room/{roomId}/media", http.MethodDelete, a.adminDeleteRoom)
	h("/purge_media_cache", http.MethodPost, a.adminPurgeCache)
}

// adminOnly lets only server administrators through (403 M_FORBIDDEN).
func adminOnly(h func(http.ResponseWriter, *http.Request, *auth.Device)) func(http.ResponseWriter, *http.Request, *auth.Device) {
	return func(w http.ResponseWriter, r *http.Request, d *auth.Device) {
		if !d.IsAdmin {
			httputil.WriteError(w, r, httputil.Forbidden("you are not a server admin"))
			return
		}
		h(w, r, d)
	}
}

func (a *API) adminQuarantineOne(on bool) func(http.ResponseWriter, *http.Request, *auth.Device) {
	return func(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
		origin, mediaID, err := mediaRef(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if _, err := a.setQuarantined(r.Context(), storage.MediaKey{Origin: origin, MediaID: mediaID}, on); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
	}
}

// setQuarantined quarantines (or releases) an item. A remote item not
// cached yet gets a quarantined placeholder row, so that it is never
// fetched; a local one must exist. changed says whether the flag moved.
func (a *API) setQuarantined(ctx context.Context, k storage.MediaKey, on bool) (changed bool, err error) {
	m, err := a.db.GetMedia(ctx, k.Origin, k.MediaID)
	switch {
	case errors.Is(err, storage.ErrNotFound) && !a.isLocal(k.Origin) && on:
		err = a.db.CreateMedia(ctx, &storage.Media{Origin: k.Origin, MediaID: k.MediaID, CreatedTS: a.nowMS(), Quarantined: true})
		if errors.Is(err, storage.ErrMediaExists) {
			return a.setQuarantined(ctx, k, on)
		}
		return err == nil, err
	case errors.Is(err, storage.ErrNotFound):
		return false, httputil.NotFound("no such media")
	case err != nil:
		return false, err
	case m.Quarantined == on:
		return false, nil
	}
	return true, a.db.SetMediaQuarantined(ctx, k.Origin, k.MediaID, on)
}

func (a *API) adminQuarantineRoom(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	keys, err := a.roomMedia(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	n := 0
	for _, k := range keys {
		changed, err := a.setQuarantined(r.Context(), k, true)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			var me *httputil.Error
			if !errors.As(err, &me) {
				httputil.WriteError(w, r, err)
				return
			}
		}
		if changed {
			n++
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]int{"num_quarantined": n})
}

func (a *API) adminQuarantineUser(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	userID, err := localUserVar(r, a.serverName)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	n, err := a.db.QuarantineUserMedia(r.Context(), userID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]int64{"num_quarantined": n})
}

func (a *API) adminListRoom(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	keys, err := a.roomMedia(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	local, remote := []string{}, []string{}
	for _, k := range keys {
		if a.isLocal(k.Origin) {
			local = append(local, mxcURI(k.Origin, k.MediaID))
		} else {
			remote = append(remote, mxcURI(k.Origin, k.MediaID))
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string][]string{"local": local, "remote": remote})
}

func (a *API) adminDeleteOne(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	origin, mediaID, err := mediaRef(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.deleteMedia(r.Context(), storage.MediaKey{Origin: origin, MediaID: mediaID}); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = httputil.NotFound("no such media")
		}
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"deleted_media": []string{mediaID}, "total": 1})
}

func (a *API) adminDeleteUser(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	userID, err := localUserVar(r, a.serverName)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	keys, err := a.db.ListUserMedia(r.Context(), userID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.writeDeleted(w, r, keys)
}

func (a *API) adminDeleteRoom(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	keys, err := a.roomMedia(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.writeDeleted(w, r, keys)
}

// writeDeleted deletes the items and answers with the IDs deleted.
func (a *API) writeDeleted(w http.ResponseWriter, r *http.Request, keys []storage.MediaKey) {
	deleted := []string{}
	for _, k := range keys {
		err := a.deleteMedia(r.Context(), k)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		deleted = append(deleted, k.MediaID)
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"deleted_media": deleted, "total": len(deleted)})
}

func (a *API) adminPurgeCache(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	ts, err := strconv.ParseInt(r.URL.Query().Get("before_ts"), 10, 64)
	if err != nil || ts < 0 {
		httputil.WriteError(w, r, httputil.MissingParam("before_ts must be a timestamp in milliseconds"))
		return
	}
	n, err := a.purgeRemoteBefore(r.Context(), ts)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]int{"deleted": n})
}

// deleteMedia deletes an item, its thumbnails and the blobs nothing else
// uses.
func (a *API) deleteMedia(ctx context.Context, k storage.MediaKey) error {
	blobs, err := a.db.DeleteMedia(ctx, k.Origin, k.MediaID)
	if err != nil {
		return err
	}
	for _, sum := range blobs {
		used, err := a.db.MediaBlobInUse(ctx, sum)
		if err != nil {
			return err
		}
		if !used {
			if err := a.store.Delete(sum); err != nil {
				a.logger.Warn("cannot delete a media file", "sha256", sum, "err", err)
			}
		}
	}
	return nil
}

func (a *API) roomMedia(r *http.Request) ([]storage.MediaKey, error) {
	roomID := httputil.PathVar(r, "roomId")
	if !strings.HasPrefix(roomID, "!") {
		return nil, httputil.InvalidParam("not a room ID: " + roomID)
	}
	keys, err := a.db.RoomMedia(r.Context(), roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, httputil.NotFound("unknown room")
	}
	return keys, err
}

// localUserVar reads the {userId} path variable, which must be a local
// user.
func localUserVar(r *http.Request, serverName string) (string, error) {
	userID := httputil.PathVar(r, "userId")
	if !strings.HasPrefix(userID, "@") || !strings.HasSuffix(userID, ":"+serverName) {
		return "", httputil.InvalidParam("not a local user ID: " + userID)
	}
	return userID, nil
}
