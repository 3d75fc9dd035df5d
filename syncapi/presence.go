package syncapi

// Presence (client-server-api "Presence"): PUT/GET /presence/{userId}/status,
// set_presence on /sync, and the presence section of /sync.
//
// A change others can see (state, status message, currently_active) takes a
// stream position and wakes the syncs of everyone sharing a room with the
// user. Activity alone only refreshes last_active_ts, at most once a minute
// per user per process (activeGranularity): a /sync per second per user
// must not be a database write per second. A sweeper marks offline the
// users whose clients stopped syncing (offlineAfter).

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

const (
	presenceOnline      = "online"
	presenceUnavailable = "unavailable"
	presenceOffline     = "offline"

	// activeGranularity: last_active_ts is refreshed at most this often,
	// and a user active within it is currently_active (Synapse's
	// LAST_ACTIVE_GRANULARITY).
	activeGranularity = time.Minute
	// offlineAfter: an online user whose clients have not synced for this
	// long is marked offline.
	offlineAfter = 5 * time.Minute
	sweepEvery   = time.Minute
	// remoteOfflineAfter: a remote user not offline whose server has not
	// sent their presence for this long is marked offline (Synapse's
	// FEDERATION_TIMEOUT; servers repeat their users' presence every 25
	// minutes while it is not offline, and so does this one's federation
	// sender).
	remoteOfflineAfter = 30 * time.Minute
)

func validPresence(s string) bool {
	return s == presenceOnline || s == presenceUnavailable || s == presenceOffline
}

type presenceTracker struct {
	a *API

	mu     sync.Mutex
	recent map[string]presenceMark // user → what this process last wrote

	stop chan struct{}
	done chan struct{}
}

type presenceMark struct {
	state string
	at    time.Time
}

func newPresenceTracker(a *API) *presenceTracker {
	p := &presenceTracker{a: a, recent: map[string]presenceMark{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.sweep()
	return p
}

func (p *presenceTracker) close() {
	close(p.stop)
	<-p.done
}

// syncing records that userID's client is syncing with set_presence state
// ("" means online). It writes in the background: presence must not slow
// a sync down.
func (p *presenceTracker) syncing(userID, state string) {
	if state == "" {
		state = presenceOnline
	}
	if state == presenceOffline {
		return
	}
	now := time.Now()
	p.mu.Lock()
	m, ok := p.recent[userID]
	fresh := ok && m.state == state && now.Sub(m.at) < activeGranularity
	if !fresh {
		p.recent[userID] = presenceMark{state: state, at: now}
	}
	p.mu.Unlock()
	if fresh {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.set(ctx, userID, state, nil, false); err != nil {
			p.a.logger.Warn("cannot record presence", "user", userID, "err", err)
			p.mu.Lock()
			delete(p.recent, userID)
			p.mu.Unlock()
		}
	}()
}

// set stores userID's presence state. statusMsg replaces the status
// message when setMsg is true.
func (p *presenceTracker) set(ctx context.Context, userID, state string, statusMsg *string, setMsg bool) error {
	now := time.Now().UnixMilli()
	var pos int64
	err := p.a.db.WithTx(ctx, func(tx *storage.Tx) error {
		old, err := tx.GetPresence(ctx, userID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		next := storage.Presence{UserID: userID, State: state}
		if old != nil {
			next.StatusMsg, next.LastActiveTS = old.StatusMsg, old.LastActiveTS
		}
		if setMsg {
			next.StatusMsg = statusMsg
		}
		if state == presenceOnline {
			next.LastActiveTS = now
		}
		next.CurrentlyActive = state == presenceOnline
		visible := old == nil || old.State != next.State || old.CurrentlyActive != next.CurrentlyActive ||
			!sameMsg(old.StatusMsg, next.StatusMsg)
		pos, err = tx.PutPresence(ctx, next, visible)
		return err
	})
	if err != nil || pos == 0 {
		return err
	}
	p.a.notifyPresence(ctx, userID, pos)
	return nil
}

func sameMsg(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// notifyPresence wakes the syncs of userID and of everyone in its rooms.
func (a *API) notifyPresence(ctx context.Context, userID string, pos int64) {
	publish := func(n bus.SyncNotification) {
		if err := bus.NotifySync(ctx, a.bus, n); err != nil {
			a.logger.Warn("cannot publish a sync notification", "err", err)
		}
	}
	publish(bus.SyncNotification{Pos: pos, UserIDs: []string{userID}, Kind: bus.SyncKindPresence})
	rooms, err := a.db.RoomsForUser(ctx, userID, "join")
	if err != nil {
		a.logger.Warn("cannot list rooms for a presence change", "err", err)
		return
	}
	for _, room := range rooms {
		publish(bus.SyncNotification{Pos: pos, RoomID: room, Kind: bus.SyncKindPresence})
	}
}

// sweep marks offline the users whose clients stopped syncing. Several
// processes may sweep at once: the change is the same whoever makes it.
func (p *presenceTracker) sweep() {
	defer close(p.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		users, err := p.a.db.StalePresence(ctx, time.Now().Add(-offlineAfter).UnixMilli(), 1000)
		if err != nil {
			p.a.logger.Warn("presence sweep", "err", err)
		}
		for _, u := range users {
			p.mu.Lock()
			delete(p.recent, u)
			p.mu.Unlock()
			if err := p.set(ctx, u, presenceOffline, nil, false); err != nil {
				p.a.logger.Warn("presence sweep", "user", u, "err", err)
				break
			}
		}
		cutoff := time.Now().Add(-remoteOfflineAfter).UnixMilli()
		remote, err := p.a.db.StaleRemotePresence(ctx, cutoff, 1000)
		if err != nil {
			p.a.logger.Warn("presence sweep", "err", err)
		}
		for _, u := range remote {
			if err := p.expireRemote(ctx, u, cutoff); err != nil {
				p.a.logger.Warn("presence sweep", "user", u, "err", err)
				break
			}
		}
		cancel()
	}
}

// expireRemote marks offline a remote user whose server has been silent
// since before cutoffMS. The row stays a remote user's (remote_ts kept):
// the next sweep passes over it, and the user's server can bring it back.
func (p *presenceTracker) expireRemote(ctx context.Context, userID string, cutoffMS int64) error {
	var pos int64
	err := p.a.db.WithTx(ctx, func(tx *storage.Tx) error {
		old, err := tx.GetPresence(ctx, userID)
		if err != nil {
			return err
		}
		if old.State == presenceOffline || old.RemoteTS == 0 || old.RemoteTS >= cutoffMS {
			return nil // another process swept it, or its server spoke since
		}
		next := *old
		next.State, next.CurrentlyActive = presenceOffline, false
		pos, err = tx.PutPresence(ctx, next, true)
		return err
	})
	if err != nil || pos == 0 {
		return err
	}
	p.a.notifyPresence(ctx, userID, pos)
	return nil
}

type presenceRequest struct {
	Presence  *string `json:"presence"`
	StatusMsg *string `json:"status_msg"`
}

// putPresence serves PUT /presence/{userId}/status.
func (a *API) putPresence(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID := httputil.PathVar(r, "userId")
	if err := requireSelf(d, userID, "set presence"); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var req presenceRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.Presence == nil {
		httputil.WriteError(w, r, httputil.MissingParam(`"presence" is required`))
		return
	}
	if !validPresence(*req.Presence) {
		httputil.WriteError(w, r, httputil.InvalidParam(`"presence" must be online, unavailable or offline`))
		return
	}
	if err := a.presence.set(r.Context(), userID, *req.Presence, req.StatusMsg, true); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.presence.mu.Lock()
	a.presence.recent[userID] = presenceMark{state: *req.Presence, at: time.Now()}
	a.presence.mu.Unlock()
	writeEmpty(w, r)
}

// presenceContent is the content of an m.presence event and the body of
// GET /presence.
type presenceContent struct {
	Presence        string  `json:"presence"`
	LastActiveAgo   *int64  `json:"last_active_ago,omitempty"`
	StatusMsg       *string `json:"status_msg,omitempty"`
	CurrentlyActive *bool   `json:"currently_active,omitempty"`
}

func makePresenceContent(p *storage.Presence, now time.Time) presenceContent {
	c := presenceContent{Presence: p.State, StatusMsg: p.StatusMsg}
	if p.LastActiveTS > 0 {
		ago := max(0, now.UnixMilli()-p.LastActiveTS)
		c.LastActiveAgo = &ago
	}
	if p.State == presenceOnline {
		active := p.CurrentlyActive && now.UnixMilli()-p.LastActiveTS < 2*activeGranularity.Milliseconds()
		c.CurrentlyActive = &active
	}
	return c
}

// getPresence serves GET /presence/{userId}/status: visible to the user
// and to those sharing a room with them, as in Synapse.
func (a *API) getPresence(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	userID := httputil.PathVar(r, "userId")
	if len(userID) < 2 || userID[0] != '@' {
		httputil.WriteError(w, r, httputil.InvalidParam("invalid user ID"))
		return
	}
	if userID != d.UserID {
		shares, err := a.db.SharesRoom(r.Context(), d.UserID, userID)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if !shares {
			httputil.WriteError(w, r, httputil.Forbidden("you are not allowed to see their presence"))
			return
		}
	}
	p, err := a.db.GetPresence(r.Context(), userID)
	if errors.Is(err, storage.ErrNotFound) {
		httputil.WriteJSON(w, r, http.StatusOK, presenceContent{Presence: presenceOffline})
		return
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, makePresenceContent(p, time.Now()))
}
