package syncapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/search"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// Deps is what the sync API is built from.
type Deps struct {
	DB         *storage.DB
	Bus        *bus.Bus
	Auth       *auth.Authenticator
	ServerName string
	Logger     *slog.Logger
	// Backfiller fetches a room's older history from other servers when
	// /messages reaches the start of what this server holds; nil: it
	// stops there.
	Backfiller Backfiller
	// SearchIndexPath is the directory of the full-text index behind POST
	// /search (syncapi/search); "" leaves search to another process.
	SearchIndexPath string
}

// Backfiller fetches history older than the oldest event held of a room
// (federation/handshake implements it) and returns how many events it
// added.
type Backfiller interface {
	Backfill(ctx context.Context, roomID string, limit int) (int, error)
}

// API is the sync component: its HTTP endpoints, the notifier and the
// in-memory typing table, fed from the bus.
type API struct {
	db         *storage.DB
	bus        *bus.Bus
	auth       *auth.Authenticator
	serverName string
	logger     *slog.Logger
	instance   string // this process's instance ID (sync tokens)
	backfiller Backfiller

	notifier    *notifier
	typing      *typingTable
	presence    *presenceTracker
	lazyMembers *lazyMembersCache
	users       *userCache
	workers     *workerPool
	flights     flights
	filterCache filterCache

	search *search.Index // nil: /search is not served here

	draining atomic.Bool
	parked   sync.WaitGroup // parked long-polls not yet answered
	resumer  *resumer

	stopOnce sync.Once
	stop     func()
}

// New builds the sync API and subscribes it to the bus. Close it before
// closing the bus.
func New(d Deps) (*API, error) {
	if d.DB == nil || d.Bus == nil || d.Auth == nil || d.ServerName == "" {
		return nil, errors.New("syncapi: DB, Bus, Auth and ServerName are required")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	a := &API{
		db:          d.DB,
		bus:         d.Bus,
		auth:        d.Auth,
		serverName:  d.ServerName,
		backfiller:  d.Backfiller,
		logger:      logger.With("component", "syncapi"),
		instance:    synctoken.NewInstanceID(),
		notifier:    newNotifier(),
		lazyMembers: newLazyMembersCache(),
		users:       newUserCache(),
		workers:     newWorkerPool(),
	}
	a.typing = newTypingTable(func(roomID string) { a.notifier.notify(0, roomID, nil) })
	a.presence = newPresenceTracker(a)
	a.resumer = newResumer(a)
	// What New started, stopped again when it fails.
	undo := func() {
		a.presence.close()
		a.resumer.close()
		a.workers.close()
	}
	stop, err := a.subscribe(context.Background())
	if err != nil {
		undo()
		return nil, err
	}
	if d.SearchIndexPath != "" {
		if a.search, err = search.Open(context.Background(), search.Config{
			DB: a.db, Bus: a.bus, Path: d.SearchIndexPath, Logger: a.logger,
		}); err != nil {
			stop()
			undo()
			return nil, err
		}
	}
	a.stop = func() {
		if a.search != nil {
			if err := a.search.Close(); err != nil {
				a.logger.Warn("closing the search index", "err", err)
			}
		}
		stop()
	}
	return a, nil
}

// Close answers the parked long-polls and stops the bus subscriptions.
// Syncs waiting in their handlers return at their timeout.
func (a *API) Close() {
	a.stopOnce.Do(func() {
		a.Drain()
		a.parked.Wait()
		a.resumer.close()
		a.stop()
		a.presence.close()
		a.workers.close()
	})
}

// requiredOnWorker is auth.Required with the authentication run on the
// worker pool.
func (a *API) requiredOnWorker(h func(http.ResponseWriter, *http.Request, *auth.Device)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := onWorker(r.Context(), a.workers, func() (*auth.Device, error) { return a.auth.Authenticate(r) })
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		h(w, r, d)
	}
}

// Drain makes the waiting long-polls answer now, and later ones answer at
// once, for a graceful shutdown.
func (a *API) Drain() {
	a.draining.Store(true)
	a.notifier.wakeAll()
}

// Register adds the sync API's endpoints to r (a router from
// httputil.NewRouter).
func (a *API) Register(r *mux.Router) {
	const v3 = "/_matrix/client/v3"
	route := func(method, path string, h func(http.ResponseWriter, *http.Request, *auth.Device)) {
		r.HandleFunc(v3+path, a.auth.Required(h)).Methods(method)
	}
	r.HandleFunc(v3+"/sync", a.serveSync).Methods(http.MethodGet)

	route(http.MethodPost, "/user/{userId}/filter", a.postFilter)
	route(http.MethodGet, "/user/{userId}/filter/{filterId}", a.getFilter)

	route(http.MethodPut, "/user/{userId}/account_data/{type}", a.putAccountData)
	route(http.MethodGet, "/user/{userId}/account_data/{type}", a.getAccountData)
	route(http.MethodPut, "/user/{userId}/rooms/{roomId}/account_data/{type}", a.putAccountData)
	route(http.MethodGet, "/user/{userId}/rooms/{roomId}/account_data/{type}", a.getAccountData)
	route(http.MethodGet, "/user/{userId}/rooms/{roomId}/tags", a.getTags)
	route(http.MethodPut, "/user/{userId}/rooms/{roomId}/tags/{tag}", a.putTag)
	route(http.MethodDelete, "/user/{userId}/rooms/{roomId}/tags/{tag}", a.deleteTag)

	route(http.MethodPut, "/rooms/{roomId}/typing/{userId}", a.putTyping)
	route(http.MethodPost, "/rooms/{roomId}/receipt/{receiptType}/{eventId}", a.postReceipt)
	route(http.MethodPost, "/rooms/{roomId}/read_markers", a.postReadMarkers)

	route(http.MethodPut, "/presence/{userId}/status", a.putPresence)
	route(http.MethodGet, "/presence/{userId}/status", a.getPresence)

	route(http.MethodGet, "/rooms/{roomId}/messages", a.getMessages)
	route(http.MethodGet, "/rooms/{roomId}/context/{eventId}", a.getContext)

	const v1 = "/_matrix/client/v1"
	r.HandleFunc(v1+"/rooms/{roomId}/relations/{eventId}", a.auth.Required(a.getRelations)).Methods(http.MethodGet)
	r.HandleFunc(v1+"/rooms/{roomId}/relations/{eventId}/{relType}", a.auth.Required(a.getRelations)).Methods(http.MethodGet)
	r.HandleFunc(v1+"/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", a.auth.Required(a.getRelations)).Methods(http.MethodGet)
	r.HandleFunc(v1+"/rooms/{roomId}/threads", a.auth.Required(a.getThreads)).Methods(http.MethodGet)
	if a.search != nil {
		route(http.MethodPost, "/search", a.postSearch)
	}
}
