package federation

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/e2ee"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/federation/serverkeys"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// DefaultKeyValidity is how long a published key response stays valid
// (valid_until_ts = now + this). One day, as in Synapse: long enough that
// remote servers rarely refetch, short enough that a rotated or revoked key
// stops being trusted soon.
const DefaultKeyValidity = 24 * time.Hour

// Deps is what the federation API is built from.
type Deps struct {
	Config *config.Config
	Keys   *keys.Ring
	DB     *storage.DB
	// Roomserver answers the reads about rooms (events, state, auth
	// chains, who may see what).
	Roomserver *roomserver.Roomserver
	// ServerKeys gives other servers' keys, to check request signatures,
	// and backs the notary endpoints.
	ServerKeys *serverkeys.Store
	// Client sends signed requests to other servers (fetching the events
	// missing before a received PDU). nil: gaps are not filled.
	Client *fedclient.Client
	// Version is this build's version, for GET /_matrix/federation/v1/version.
	Version string
	// KeyValidity is the lifetime of a key response; 0 means
	// DefaultKeyValidity.
	KeyValidity time.Duration
	// Now is the clock; nil means time.Now. Tests fix it.
	Now func() time.Time
	// OnRemoteContact, if set, is called with the origin of every
	// authenticated request: that server is up, so the federation sender
	// ends its backoff (sender.Sender.Wake). It must be quick.
	OnRemoteContact func(origin string)
	// Media serves our media to other servers (media.go); nil = the media
	// endpoints are not served.
	Media MediaServer
	// Bus carries what received EDUs change to the sync processes
	// (typing, and the wake-ups for receipts and presence).
	Bus *bus.Bus
	// E2EE answers other servers' key queries and claims for our users;
	// nil leaves those endpoints unserved.
	E2EE *e2ee.Service
}

// API is the Server-Server API.
type API struct {
	cfg         *config.Config
	keys        *keys.Ring
	db          *storage.DB
	rs          *roomserver.Roomserver
	serverKeys  *serverkeys.Store
	version     string
	keyValidity time.Duration
	now         func() time.Time
	client      *fedclient.Client
	txns        *txnCache
	onContact   func(origin string)
	media       MediaServer
	bus         *bus.Bus
	edus        eduHandlers
	e2ee        *e2ee.Service
}

// New builds the federation API.
func New(d Deps) (*API, error) {
	if d.Config == nil || d.Keys == nil || d.DB == nil || d.ServerKeys == nil || d.Roomserver == nil || d.Bus == nil {
		return nil, errors.New("federation: Config, Keys, DB, Roomserver, ServerKeys and Bus are required")
	}
	a := &API{cfg: d.Config, keys: d.Keys, db: d.DB, rs: d.Roomserver, serverKeys: d.ServerKeys, version: d.Version, keyValidity: d.KeyValidity, now: d.Now,
		client: d.Client, txns: newTxnCache(txnCacheSize), onContact: d.OnRemoteContact, bus: d.Bus, media: d.Media, e2ee: d.E2EE}
	a.registerBuiltinEDUs()
	if a.keyValidity <= 0 {
		a.keyValidity = DefaultKeyValidity
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Register adds the federation endpoints to r (the federation listener's
// router, from httputil.NewRouter), including /.well-known/matrix/server.
// Every /_matrix/federation/ endpoint but the version and
// /openid/userinfo requires a signed request (Authenticate); the key
// endpoints do not.
func (a *API) Register(r *mux.Router) {
	a.registerVersion(r)
	a.registerKeys(r)
	a.RegisterWellKnown(r)
	// Third parties, not servers, call /openid/userinfo: it is the one
	// /_matrix/federation/ endpoint besides the version without a
	// signature, so it is registered before the signed matcher.
	a.registerOpenID(r)

	// A matcher rather than PathPrefix, which would prefix the routes'
	// paths: the signed routes keep their full paths (and templates).
	signed := r.MatcherFunc(func(req *http.Request, _ *mux.RouteMatch) bool {
		return strings.HasPrefix(req.URL.Path, "/_matrix/federation/")
	}).Subrouter()
	// Before Authenticate, which reads the body under the limit.
	r.Use(a.limitBodies)
	signed.Use(a.Authenticate)
	a.registerQuery(signed)
	a.registerEvents(signed)
	a.registerBackfill(signed)
	a.registerSend(signed)
	a.registerMembership(signed)
	a.registerHierarchy(signed)
	a.registerPublicRooms(signed)
	a.registerMedia(signed)
	a.registerUserKeys(signed)
}
