package syncapi

// POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}
// (client-server-api "Filtering").

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) postFilter(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID := httputil.PathVar(r, "userId")
	if err := requireSelf(d, userID, "create filters"); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	body, err := httputil.ReadJSONObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if _, err := ParseFilter(body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	id, err := a.db.PutFilter(r.Context(), userID, body)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"filter_id": id})
}

func (a *API) getFilter(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID := httputil.PathVar(r, "userId")
	if err := requireSelf(d, userID, "read filters"); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	body, err := a.db.GetFilter(r.Context(), userID, httputil.PathVar(r, "filterId"))
	if errors.Is(err, storage.ErrNotFound) {
		httputil.WriteError(w, r, httputil.NotFound("no such filter"))
		return
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteRawJSON(w, http.StatusOK, body)
}

// syncFilter resolves the filter parameter of /sync: inline JSON when it
// starts with '{', else a filter ID of the user's. Errors are Synapse's:
// M_NOT_JSON / M_BAD_JSON for a bad inline filter, 400 M_INVALID_PARAM for
// an unknown ID.
func (a *API) syncFilter(ctx context.Context, userID, param string) (*Filter, error) {
	if param == "" {
		return &noFilter, nil
	}
	if strings.HasPrefix(param, "{") {
		return ParseFilter([]byte(param))
	}
	key := userID + "\x00" + param
	a.filterCache.mu.Lock()
	f := a.filterCache.m[key]
	a.filterCache.mu.Unlock()
	if f != nil {
		return f, nil
	}
	body, err := a.db.GetFilter(ctx, userID, param)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, httputil.InvalidParam("no such filter: " + param)
	}
	if err != nil {
		return nil, err
	}
	if f, err = ParseFilter(body); err != nil {
		return nil, err
	}
	// Stored filters never change: keep them parsed (bounded; when full,
	// start afresh).
	a.filterCache.mu.Lock()
	if a.filterCache.m == nil || len(a.filterCache.m) >= maxCachedFilters {
		a.filterCache.m = map[string]*Filter{}
	}
	a.filterCache.m[key] = f
	a.filterCache.mu.Unlock()
	return f, nil
}

// noFilter is the filter of a sync without one. Filters are never
// modified once parsed, so all such syncs share it.
var noFilter Filter

// maxCachedFilters bounds the parsed filters kept in memory.
const maxCachedFilters = 10000

type filterCache struct {
	mu sync.Mutex
	m  map[string]*Filter
}
