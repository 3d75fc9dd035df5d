package clientapi

// GET /notifications (client-server-api "Listing Notifications",
// notifications.yaml): the events the user's push rules made
// notifications of, newest first. The notifier (syncapi/push) records
// them; the pagination token is the stream position of the last event
// returned.

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Page sizes of /notifications.
const (
	defaultNotificationsLimit = 20
	maxNotificationsLimit     = 100
)

func (a *API) registerNotifications(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/notifications", a.auth.Required(a.getNotifications)).Methods(http.MethodGet)
}

type notificationJSON struct {
	Actions json.RawMessage `json:"actions"`
	Event   json.RawMessage `json:"event"`
	Read    bool            `json:"read"`
	RoomID  string          `json:"room_id"`
	TS      int64           `json:"ts"`
}

// getNotifications serves GET /notifications.
func (a *API) getNotifications(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	q := r.URL.Query()
	var before int64
	if from := q.Get("from"); from != "" {
		v, err := strconv.ParseInt(from, 10, 64)
		if err != nil || v <= 0 {
			writeErr(w, r, httputil.InvalidParam("from is not a token from next_token"))
			return
		}
		before = v
	}
	limit := defaultNotificationsLimit
	if l := q.Get("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 0 {
			writeErr(w, r, httputil.InvalidParam("limit must be a non-negative integer"))
			return
		}
		limit = min(max(v, 1), maxNotificationsLimit)
	}
	ns, err := a.db.Notifications(r.Context(), d.UserID, before, limit, q.Get("only") == "highlight")
	if err != nil {
		writeErr(w, r, err)
		return
	}
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.EventID
	}
	evs, err := a.db.EventsByID(r.Context(), ids)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	byID := make(map[string]*storage.EventRecord, len(evs))
	for _, ev := range evs {
		byID[ev.EventID] = ev
	}
	var opts clientevent.Options
	out := make([]notificationJSON, 0, len(ns))
	for _, n := range ns {
		ev := byID[n.EventID]
		if ev == nil {
			continue
		}
		out = append(out, notificationJSON{Actions: n.Actions, Event: opts.Format(ev), Read: n.Read, RoomID: n.RoomID, TS: n.TS})
	}
	resp := map[string]any{"notifications": out}
	if len(ns) == limit {
		resp["next_token"] = strconv.FormatInt(ns[len(ns)-1].EventPos, 10)
	}
	writeOK(w, r, resp)
}
