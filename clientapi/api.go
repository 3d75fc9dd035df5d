package clientapi

import (
	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/e2ee"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/ratelimit"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// Deps is what the client API is built from. It grows as modules land
// (storage, the roomserver, sync, ...).
type Deps struct {
	Config *config.Config
	DB     *storage.DB
	// Auth checks access tokens; nil = a new one over DB.
	Auth *auth.Authenticator
	// Limits are the rate limiters (see internal/ratelimit); nil = built
	// from Config.
	Limits *ratelimit.Limits
	// Roomserver is the one way into rooms (sending events, room queries).
	Roomserver *roomserver.Roomserver
	// Federation reaches rooms and aliases on other servers; nil: they
	// are unreachable (404).
	Federation Federation
	// E2EE serves the end-to-end encryption modules (keys, to-device,
	// key backup, dehydrated devices); nil leaves them unserved.
	E2EE *e2ee.Service
	// Bus carries the wake-ups of writes other components follow (push
	// rules: /sync and the notifier); nil: none are sent.
	Bus *bus.Bus
}

// API is the Client-Server API.
type API struct {
	cfg    *config.Config
	db     *storage.DB
	auth   *auth.Authenticator
	limits *ratelimit.Limits
	rs     *roomserver.Roomserver
	// federation: nil without federation.
	federation Federation
	e2ee       *e2ee.Service
	bus        *bus.Bus
}

// New builds the client API.
func New(d Deps) *API {
	a := &API{cfg: d.Config, db: d.DB, auth: d.Auth, limits: d.Limits, rs: d.Roomserver, federation: d.Federation, e2ee: d.E2EE, bus: d.Bus}
	if a.auth == nil && d.DB != nil {
		a.auth = NewAuthenticator(d.DB, d.Config)
	}
	if a.limits == nil {
		a.limits = ratelimit.FromConfig(d.Config)
	}
	return a
}

// Register adds every client API endpoint to r, which should come from
// httputil.NewRouter (Matrix 404/405 answers, route templates for metrics).
// Each module registers its own routes in its own file.
//
// The router tries routes in the order they were added, each at some cost,
// so the busiest come first: the room endpoints (sending events above all)
// before the accounts'. No two modules' routes match the same request, so
// the order changes nothing else.
func (a *API) Register(r *mux.Router) {
	a.registerVersions(r)
	a.registerWellKnown(r)
	a.registerRooms(r)
	a.registerAccounts(r)
	a.registerE2EE(r)
	a.registerPush(r)
	registerLegacyR0(r)
}
