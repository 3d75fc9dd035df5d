package federation

import (
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/keys"
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
	// Version is this build's version, for GET /_matrix/federation/v1/version.
	Version string
	// KeyValidity is the lifetime of a key response; 0 means
	// DefaultKeyValidity.
	KeyValidity time.Duration
	// Now is the clock; nil means time.Now. Tests fix it.
	Now func() time.Time
}

// API is the Server-Server API.
type API struct {
	cfg         *config.Config
	keys        *keys.Ring
	version     string
	keyValidity time.Duration
	now         func() time.Time
}

// New builds the federation API.
func New(d Deps) *API {
	a := &API{cfg: d.Config, keys: d.Keys, version: d.Version, keyValidity: d.KeyValidity, now: d.Now}
	if a.keyValidity <= 0 {
		a.keyValidity = DefaultKeyValidity
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Register adds the federation endpoints to r (the federation listener's
// router, from httputil.NewRouter), including /.well-known/matrix/server.
func (a *API) Register(r *mux.Router) {
	a.registerVersion(r)
	a.registerKeys(r)
	a.RegisterWellKnown(r)
}
