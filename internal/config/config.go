// Package config holds Myelin's configuration: its defaults, the documented
// YAML file, and the flags and MYELIN_* environment variables that override
// it. Precedence, lowest first: defaults, config file, environment, flags.
//
// Every setting is described once, in the option table of options.go, which
// drives the YAML file and its comments, the flags, the environment variables
// and docs/configuration.md (printed by `myelin generate-config --markdown`).
// Server names are validated per the spec's appendices, "Server Name".
package config

import (
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole server configuration. Every field has a yaml key, a
// --flag and a MYELIN_* environment variable (see docs/configuration.md).
type Config struct {
	// ConfigPath is the YAML file the configuration was read from (flag
	// --config, MYELIN_CONFIG); default DataDir/myelin.yaml. Not a YAML key.
	ConfigPath string `yaml:"-"`

	// ServerName is the Matrix server name (the part after ':' in user IDs).
	ServerName string `yaml:"server_name"`
	// DataDir holds the config, signing key, SQLite database, NATS store and media.
	DataDir string `yaml:"data_dir"`

	ClientListen     string `yaml:"client_listen"`     // client API, plain HTTP (":8008")
	FederationListen string `yaml:"federation_listen"` // federation API, HTTPS (":8448")

	TLSCert string     `yaml:"tls_cert"` // federation certificate (PEM); empty = ACME or self-signed
	TLSKey  string     `yaml:"tls_key"`
	ACME    ACMEConfig `yaml:"acme"`

	FederationTrustCA            string `yaml:"federation_trust_ca"`             // extra CA (PEM) for outbound federation
	FederationInsecureSkipVerify bool   `yaml:"federation_insecure_skip_verify"` // development only
	// TrustedKeyServers are the notaries asked for other servers' keys when
	// those cannot give them, comma-separated server names (see
	// TrustedKeyServerList); empty = none.
	TrustedKeyServers string `yaml:"trusted_key_servers"`
	// FederationIPRangeDenylist are the IP ranges outbound federation never
	// connects to, comma-separated CIDRs (see FederationIPRanges); default
	// DefaultFederationIPRangeDenylist. FederationIPRangeAllowlist are
	// ranges exempted from it.
	FederationIPRangeDenylist  string `yaml:"federation_ip_range_denylist"`
	FederationIPRangeAllowlist string `yaml:"federation_ip_range_allowlist"`

	// PushAllowPrivateAddresses lets pushers reach push gateways at
	// private, loopback and link-local addresses, which are refused by
	// default so that a pusher cannot make the server reach its own
	// network. PushInsecureSkipVerify does not verify gateways' TLS
	// certificates. Both are for private deployments and tests.
	PushAllowPrivateAddresses bool `yaml:"push_allow_private_addresses"`
	PushInsecureSkipVerify    bool `yaml:"push_insecure_skip_verify"`

	Database string `yaml:"database"` // "sqlite:PATH" or a postgres:// URL
	NATS     string `yaml:"nats"`     // empty = embedded JetStream in DataDir

	RegistrationSharedSecret string `yaml:"registration_shared_secret"`
	OpenRegistration         bool   `yaml:"open_registration"`
	NoRateLimit              bool   `yaml:"no_rate_limit"`
	// TrustXForwardedFor takes clients' addresses from the reverse proxy's
	// X-Forwarded-For header (rate limits, devices' last_seen_ip).
	TrustXForwardedFor bool `yaml:"trust_x_forwarded_for"`
	// RateLimit sets the request rate limits (internal/ratelimit).
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// UserDirectorySearchAllUsers lets the user directory find every local
	// user, not only those sharing a room with the searcher or in public
	// rooms.
	UserDirectorySearchAllUsers bool `yaml:"user_directory_search_all_users"`
	// SearchIndex keeps the full-text index of room events in
	// DataDir/search.bleve and serves POST /search from this process.
	SearchIndex bool `yaml:"search_index"`
	// RefreshableAccessTokenLifetime is how long an access token issued
	// with a refresh token lives (Go duration).
	RefreshableAccessTokenLifetime string `yaml:"refreshable_access_token_lifetime"`

	// SigningKeyPath is the ed25519 signing key file; default DataDir/signing.key.
	SigningKeyPath string `yaml:"signing_key_path"`

	// WellKnownClientBaseURL is served as m.homeserver.base_url in
	// /.well-known/matrix/client; empty = not served (404).
	WellKnownClientBaseURL string `yaml:"well_known_client_base_url"`
	// WellKnownServer is served as m.server in /.well-known/matrix/server;
	// empty = not served (404).
	WellKnownServer string `yaml:"well_known_server"`

	// Media configures the media repository (mediaapi).
	Media MediaConfig `yaml:"media"`

	MaxRequestBodyBytes int64  `yaml:"max_request_body_bytes"` // for non-media requests
	LogLevel            string `yaml:"log_level"`              // debug, info, warn, error
	LogFormat           string `yaml:"log_format"`             // text or json
	BcryptCost          int    `yaml:"bcrypt_cost"`
	ShutdownTimeout     string `yaml:"shutdown_timeout"` // Go duration, e.g. "10s"
}

// ACMEConfig enables certificates from an ACME CA (Let's Encrypt) through
// golang.org/x/crypto/acme/autocert for the federation listener.
type ACMEConfig struct {
	Enabled      bool   `yaml:"enabled"`
	Email        string `yaml:"email"`
	DirectoryURL string `yaml:"directory_url"` // empty = Let's Encrypt production
	CacheDir     string `yaml:"cache_dir"`     // default DataDir/acme
}

// MediaConfig configures the media repository: uploads, downloads,
// thumbnails, remote media and URL previews.
type MediaConfig struct {
	// StorePath is the directory of the media files; default DataDir/media.
	StorePath string `yaml:"store_path"`
	// MaxUploadBytes is the largest file accepted, uploaded or fetched
	// from another server.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// UserQuotaBytes bounds the content one user may upload in all; 0 =
	// unlimited.
	UserQuotaBytes int64 `yaml:"user_quota_bytes"`
	// MaxPendingUploads bounds a user's media IDs created with POST
	// /create and not uploaded yet.
	MaxPendingUploads int `yaml:"max_pending_uploads"`
	// PendingUploadLifetime is how long a created media ID waits for its
	// content (Go duration).
	PendingUploadLifetime string `yaml:"pending_upload_lifetime"`
	// FreezeUnauthenticated serves media created from now on only on the
	// authenticated endpoints (the spec's "freeze" of the legacy ones).
	FreezeUnauthenticated bool `yaml:"freeze_unauthenticated"`
	// ThumbnailSizes are the sizes thumbnails are made at, e.g.
	// "32x32 crop, 320x240 scale" (see ThumbnailSizeList).
	ThumbnailSizes string `yaml:"thumbnail_sizes"`
	// MaxThumbnailPixels bounds the images thumbnailed (width × height).
	MaxThumbnailPixels int64 `yaml:"max_thumbnail_pixels"`
	// RemoteMediaLifetime is how long cached remote media is kept (Go
	// duration); empty = forever.
	RemoteMediaLifetime string `yaml:"remote_media_lifetime"`
	// URLPreviewEnabled serves GET /preview_url.
	URLPreviewEnabled bool `yaml:"url_preview_enabled"`
	// URLPreviewIPRangeDenylist and URLPreviewIPRangeAllowlist say which
	// addresses URL previews may connect to, as the federation lists do.
	URLPreviewIPRangeDenylist  string `yaml:"url_preview_ip_range_denylist"`
	URLPreviewIPRangeAllowlist string `yaml:"url_preview_ip_range_allowlist"`
	// URLPreviewMaxBytes bounds a previewed page or image.
	URLPreviewMaxBytes int64 `yaml:"url_preview_max_bytes"`
}

// DefaultThumbnailSizes are the sizes the spec recommends.
const DefaultThumbnailSizes = "32x32 crop, 96x96 crop, 320x240 scale, 640x480 scale, 800x600 scale"

// RateLimitConfig is the token-bucket limits of internal/ratelimit: each
// action may happen PerMinute times a minute on average, in bursts of up
// to Burst. PerMinute 0 turns that limit off.
type RateLimitConfig struct {
	LoginPerMinute        int `yaml:"login_per_minute"`
	LoginBurst            int `yaml:"login_burst"`
	RegistrationPerMinute int `yaml:"registration_per_minute"`
	RegistrationBurst     int `yaml:"registration_burst"`
	MessagePerMinute      int `yaml:"message_per_minute"`
	MessageBurst          int `yaml:"message_burst"`
	JoinPerMinute         int `yaml:"join_per_minute"`
	JoinBurst             int `yaml:"join_burst"`
}

// Default returns the configuration used when nothing is configured: an
// embedded server in ./myelin-data named "localhost".
func Default() *Config {
	c := &Config{
		ServerName:          "localhost",
		DataDir:             "./myelin-data",
		ClientListen:        ":8008",
		FederationListen:    ":8448",
		MaxRequestBodyBytes: 1 << 20, // events are at most 64 KiB; room for other JSON bodies
		LogLevel:            "info",
		LogFormat:           "text",
		BcryptCost:          12,
		ShutdownTimeout:     "10s",
		// Near Synapse's defaults, a little more generous for messages
		// and joins, which bots and bridges do in bursts.
		RateLimit: RateLimitConfig{
			LoginPerMinute: 10, LoginBurst: 10,
			RegistrationPerMinute: 10, RegistrationBurst: 5,
			MessagePerMinute: 120, MessageBurst: 30,
			JoinPerMinute: 30, JoinBurst: 10,
		},
		RefreshableAccessTokenLifetime: "5m",
		FederationIPRangeDenylist:      DefaultFederationIPRangeDenylist,
		UserDirectorySearchAllUsers:    true,
		SearchIndex:                    true,
		Media: MediaConfig{
			MaxUploadBytes:            100 << 20,
			MaxPendingUploads:         5,
			PendingUploadLifetime:     "24h",
			ThumbnailSizes:            DefaultThumbnailSizes,
			MaxThumbnailPixels:        32_000_000,
			URLPreviewEnabled:         true,
			URLPreviewIPRangeDenylist: DefaultFederationIPRangeDenylist,
			URLPreviewMaxBytes:        10 << 20,
		},
	}
	c.fillDerived()
	return c
}

// TrustedKeyServerList returns the server names of TrustedKeyServers.
func (c *Config) TrustedKeyServerList() []string {
	var out []string
	for _, s := range strings.Split(c.TrustedKeyServers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// fillDerived sets the defaults that live inside DataDir, for those left
// empty, so that changing data_dir alone moves everything.
func (c *Config) fillDerived() {
	if c.ConfigPath == "" {
		c.ConfigPath = filepath.Join(c.DataDir, "myelin.yaml")
	}
	if c.Database == "" {
		c.Database = "sqlite:" + filepath.Join(c.DataDir, "myelin.db")
	}
	if c.SigningKeyPath == "" {
		c.SigningKeyPath = filepath.Join(c.DataDir, "signing.key")
	}
	if c.ACME.CacheDir == "" {
		c.ACME.CacheDir = filepath.Join(c.DataDir, "acme")
	}
	if c.Media.StorePath == "" {
		c.Media.StorePath = filepath.Join(c.DataDir, "media")
	}
}

// ShutdownTimeoutDuration is ShutdownTimeout parsed; Load has validated it,
// so the fallback of 10s only applies to a Config built by hand.
func (c *Config) ShutdownTimeoutDuration() time.Duration {
	d, err := time.ParseDuration(c.ShutdownTimeout)
	if err != nil || d <= 0 {
		return 10 * time.Second
	}
	return d
}
