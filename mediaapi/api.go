package mediaapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/storage"
)

// Matrix error codes of the content repository.
const (
	codeCannotOverwriteMedia = "M_CANNOT_OVERWRITE_MEDIA"
	codeNotYetUploaded       = "M_NOT_YET_UPLOADED"
)

// Deps is what the media repository is built from.
type Deps struct {
	Config *config.Config
	DB     *storage.DB
	Auth   *auth.Authenticator
	// Federation fetches remote media from its origin (signed requests).
	// nil: remote media cannot be fetched.
	Federation *fedclient.Client
	// FederationIPFilter checks the addresses of redirects that a remote
	// server's media answer points at; nil = fedclient.DefaultIPFilter.
	FederationIPFilter *fedclient.IPFilter
	// Store keeps the files; nil = a FileStore in Config.Media.StorePath.
	Store  BlobStore
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// API is the media repository.
type API struct {
	cfg        *config.Config
	mc         config.MediaConfig
	serverName string
	db         *storage.DB
	auth       *auth.Authenticator
	fed        *fedclient.Client
	store      BlobStore
	logger     *slog.Logger
	now        func() time.Time

	sizes           []config.ThumbnailSize
	pendingLifetime time.Duration
	remoteLifetime  time.Duration

	remoteFetches flightGroup[*storage.Media]
	thumbFlights  flightGroup[*storage.MediaThumbnail]
	previews      flightGroup[[]byte]
	// thumbSlots bounds the images being decoded at once: each can take
	// up to max_thumbnail_pixels × 4 bytes of memory.
	thumbSlots chan struct{}
	redirects  *http.Client // follows a federation answer's Location
	// pregen holds, per item, a channel closed when the thumbnails made
	// at its upload are done.
	pregenMu sync.Mutex
	pregen   map[string]chan struct{}
	preview  *previewer

	// bg runs the background work (thumbnails made at upload, the purge
	// job); stop ends it.
	bg     sync.WaitGroup
	stop   context.CancelFunc
	bgCtx  context.Context
	closed sync.Once
}

// New builds the media repository and starts its background job.
func New(d Deps) (*API, error) {
	if d.Config == nil || d.DB == nil || d.Auth == nil {
		return nil, errors.New("mediaapi: Config, DB and Auth are required")
	}
	a := &API{cfg: d.Config, mc: d.Config.Media, serverName: d.Config.ServerName, db: d.DB, auth: d.Auth,
		fed: d.Federation, store: d.Store, logger: d.Logger, now: d.Now}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	a.logger = a.logger.With("component", "mediaapi")
	if a.now == nil {
		a.now = time.Now
	}
	if a.store == nil {
		dir := a.mc.StorePath
		if dir == "" {
			return nil, errors.New("media.store_path is empty: set the directory for media files (check --media-store-path)")
		}
		fs, err := NewFileStore(dir)
		if err != nil {
			return nil, err
		}
		a.store = fs
	}
	a.sizes = d.Config.ThumbnailSizeList()
	if a.pendingLifetime = config.MediaDuration(a.mc.PendingUploadLifetime); a.pendingLifetime <= 0 {
		a.pendingLifetime = 24 * time.Hour
	}
	a.remoteLifetime = config.MediaDuration(a.mc.RemoteMediaLifetime)
	if a.mc.MaxUploadBytes <= 0 {
		a.mc.MaxUploadBytes = 100 << 20
	}
	if a.mc.MaxThumbnailPixels <= 0 {
		a.mc.MaxThumbnailPixels = 32_000_000
	}
	if a.mc.URLPreviewMaxBytes <= 0 {
		a.mc.URLPreviewMaxBytes = 10 << 20
	}
	a.thumbSlots = make(chan struct{}, 2)
	filter := d.FederationIPFilter
	if filter == nil {
		filter = fedclient.DefaultIPFilter()
	}
	a.redirects = newFilteredHTTPClient(filter.Check, time.Minute)
	deny, allow, err := d.Config.URLPreviewIPRanges()
	if err != nil {
		return nil, err
	}
	a.preview = newPreviewer(fedclient.NewIPFilter(deny, allow), a.mc.URLPreviewMaxBytes)
	a.bgCtx, a.stop = context.WithCancel(context.Background())
	a.bg.Go(a.maintain)
	return a, nil
}

// Close stops the background work and waits for it.
func (a *API) Close() {
	a.closed.Do(func() {
		a.stop()
		a.bg.Wait()
	})
}

// Store is the blob store of the files.
func (a *API) Store() BlobStore { return a.store }

// Register adds the client API's media endpoints to r (the client
// listener's router). Upload paths are in UploadPaths, for the server to
// mount outside the general body limit.
func (a *API) Register(r *mux.Router) {
	for _, v := range []string{"v3", "r0"} {
		p := "/_matrix/media/" + v
		r.HandleFunc(p+"/upload", a.secure(a.auth.Required(a.postUpload))).Methods(http.MethodPost)
		r.HandleFunc(p+"/upload/{serverName}/{mediaId}", a.secure(a.auth.Required(a.putUpload))).Methods(http.MethodPut)
		r.HandleFunc(p+"/download/{serverName}/{mediaId}", a.secure(a.legacyDownload)).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc(p+"/download/{serverName}/{mediaId}/{fileName}", a.secure(a.legacyDownload)).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc(p+"/thumbnail/{serverName}/{mediaId}", a.secure(a.legacyThumbnail)).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc(p+"/config", a.secure(a.auth.Required(a.getConfig))).Methods(http.MethodGet)
		r.HandleFunc(p+"/preview_url", a.secure(a.auth.Required(a.getPreviewURL))).Methods(http.MethodGet)
	}
	// Before v1.7's /create, v1 was an upload path too (Synapse serves it).
	r.HandleFunc("/_matrix/media/v1/upload", a.secure(a.auth.Required(a.postUpload))).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/media/v1/create", a.secure(a.auth.Required(a.postCreate))).Methods(http.MethodPost)

	p := "/_matrix/client/v1/media"
	r.HandleFunc(p+"/download/{serverName}/{mediaId}", a.secure(a.auth.Required(a.authedDownload))).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(p+"/download/{serverName}/{mediaId}/{fileName}", a.secure(a.auth.Required(a.authedDownload))).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(p+"/thumbnail/{serverName}/{mediaId}", a.secure(a.auth.Required(a.authedThumbnail))).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(p+"/config", a.secure(a.auth.Required(a.getConfig))).Methods(http.MethodGet)
	r.HandleFunc(p+"/preview_url", a.secure(a.auth.Required(a.getPreviewURL))).Methods(http.MethodGet)

	a.registerAdmin(r)
}

// RegisterLegacyFederation serves the legacy unauthenticated download and
// thumbnail endpoints on the federation listener too: servers from before
// Matrix 1.11 fetch our media there.
func (a *API) RegisterLegacyFederation(r *mux.Router) {
	for _, v := range []string{"v3", "r0"} {
		p := "/_matrix/media/" + v
		r.HandleFunc(p+"/download/{serverName}/{mediaId}", a.secure(a.legacyDownload)).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc(p+"/download/{serverName}/{mediaId}/{fileName}", a.secure(a.legacyDownload)).Methods(http.MethodGet, http.MethodHead)
		r.HandleFunc(p+"/thumbnail/{serverName}/{mediaId}", a.secure(a.legacyThumbnail)).Methods(http.MethodGet, http.MethodHead)
	}
}

// IsUploadPath reports whether a request is a media upload, whose body
// may be up to media.max_upload_bytes: the server mounts these outside the
// general body limit.
func IsUploadPath(method, path string) bool {
	switch method {
	case http.MethodPost:
		return path == "/_matrix/media/v3/upload" || path == "/_matrix/media/r0/upload" || path == "/_matrix/media/v1/upload"
	case http.MethodPut:
		for _, p := range []string{"/_matrix/media/v3/upload/", "/_matrix/media/r0/upload/"} {
			if len(path) > len(p) && path[:len(p)] == p {
				return true
			}
		}
	}
	return false
}

// MaxUploadBodyBytes is the body limit for upload requests.
func (a *API) MaxUploadBodyBytes() int64 { return a.mc.MaxUploadBytes }

// contentSecurityPolicy is the policy the spec recommends for served
// content: the response is a sandbox, so an HTML or SVG file opened from
// the media endpoints can run no script and reach nothing.
const contentSecurityPolicy = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

// secure sets the headers every media response carries, errors included.
func (a *API) secure(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		// Web clients may use the media in pages with cross-origin
		// isolation (spec v1.4).
		hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h(w, r)
	}
}

func (a *API) nowMS() int64 { return a.now().UnixMilli() }

func (a *API) isLocal(origin string) bool { return origin == a.serverName }

// detached returns a context for work that outlives the request that
// started it (a fetch other requests wait for too), bounded by d.
func (a *API) detached(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.bgCtx, d)
}
