package config

import (
	"fmt"
	"strconv"
	"strings"
)

// option describes one setting. The table below is the single source of
// truth: it drives the YAML keys and their comments in the written config
// file, the command-line flags, the MYELIN_* environment variables, the
// Markdown documentation and the validation of each value. Adding a setting
// means adding a Config field and one entry here.
type option struct {
	// key is the YAML key; a dot means nesting ("acme.enabled" is the key
	// enabled inside the acme mapping). The flag is the key with '_' and '.'
	// turned into '-', the environment variable is MYELIN_ and the key in
	// upper case with '.' turned into '_'.
	key string
	// help is the one-line description, used as the YAML comment, the flag
	// usage and the documentation.
	help string
	// defaultDoc, when set, is shown as the default in the documentation
	// instead of the value of Default() (for defaults derived from data_dir).
	defaultDoc string
	// field returns a pointer to the setting in c: *string, *bool, *int or *int64.
	field func(c *Config) any
	// check validates the final value; nil when any value of the type is fine.
	// The error says what is wrong and how to fix it.
	check func(c *Config) error
	// fileless options exist only as a flag and an environment variable
	// (the path of the config file cannot be set inside that file).
	fileless bool
}

func (o *option) flagName() string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(o.key)
}

func (o *option) envName() string {
	return "MYELIN_" + strings.ToUpper(strings.ReplaceAll(o.key, ".", "_"))
}

// options lists every setting, in the order of the written config file.
var options = []*option{
	{key: "config", fileless: true, defaultDoc: "<data_dir>/myelin.yaml",
		help:  "Path of the YAML config file; written with every default on first run if missing.",
		field: func(c *Config) any { return &c.ConfigPath }},
	{key: "server_name",
		help:  "Matrix server name, the part after ':' in user IDs (hostname[:port]); cannot change once users exist.",
		field: func(c *Config) any { return &c.ServerName }, check: checkServerName},
	{key: "data_dir",
		help:  "Directory for the signing key, SQLite database, NATS store, TLS files and media.",
		field: func(c *Config) any { return &c.DataDir }, check: checkNotEmpty(func(c *Config) string { return c.DataDir })},
	{key: "client_listen",
		help:  "Address of the client API listener (plain HTTP; put a TLS reverse proxy in front).",
		field: func(c *Config) any { return &c.ClientListen }, check: checkListen(func(c *Config) string { return c.ClientListen })},
	{key: "federation_listen",
		help:  "Address of the federation API listener (HTTPS).",
		field: func(c *Config) any { return &c.FederationListen }, check: checkListen(func(c *Config) string { return c.FederationListen })},
	{key: "tls_cert",
		help:  "Federation TLS certificate chain (PEM file); empty = ACME if enabled, else a self-signed certificate in data_dir.",
		field: func(c *Config) any { return &c.TLSCert }},
	{key: "tls_key",
		help:  "Private key (PEM file) of tls_cert.",
		field: func(c *Config) any { return &c.TLSKey }},
	{key: "acme.enabled",
		help:  "Get the federation certificate from an ACME CA (TLS-ALPN-01 on the federation listener, which must be reachable on port 443).",
		field: func(c *Config) any { return &c.ACME.Enabled }},
	{key: "acme.email",
		help:  "Contact e-mail registered with the ACME CA (optional).",
		field: func(c *Config) any { return &c.ACME.Email }},
	{key: "acme.directory_url",
		help:  "ACME directory URL; empty = Let's Encrypt production.",
		field: func(c *Config) any { return &c.ACME.DirectoryURL }, check: checkACMEDirectory},
	{key: "acme.cache_dir", defaultDoc: "<data_dir>/acme",
		help:  "Directory for the ACME account key and certificates.",
		field: func(c *Config) any { return &c.ACME.CacheDir }},
	{key: "federation_trust_ca",
		help:  "Extra CA certificates (PEM file) trusted for outbound federation, besides the system roots.",
		field: func(c *Config) any { return &c.FederationTrustCA }},
	{key: "federation_insecure_skip_verify",
		help:  "Do not verify remote servers' TLS certificates. Development only: anyone can impersonate any server.",
		field: func(c *Config) any { return &c.FederationInsecureSkipVerify }},
	{key: "trusted_key_servers",
		help:  "Notary servers asked for other servers' signing keys when those cannot give them themselves, comma-separated server names (e.g. matrix.org); empty = none.",
		field: func(c *Config) any { return &c.TrustedKeyServers }, check: checkTrustedKeyServers},
	{key: "federation_ip_range_denylist",
		help:  "IP ranges outbound federation (requests, key fetches, /.well-known) never connects to, comma-separated CIDRs checked on every address connected to, so that no one can make this server reach private services (its own database, the local network); empty = none.",
		field: func(c *Config) any { return &c.FederationIPRangeDenylist }, check: checkIPRanges(func(c *Config) string { return c.FederationIPRangeDenylist })},
	{key: "federation_ip_range_allowlist",
		help:  "IP ranges exempted from federation_ip_range_denylist, comma-separated CIDRs (e.g. 10.0.0.0/8 for a private federation); empty = none.",
		field: func(c *Config) any { return &c.FederationIPRangeAllowlist }, check: checkIPRanges(func(c *Config) string { return c.FederationIPRangeAllowlist })},
	{key: "push_allow_private_addresses",
		help:  "Let pushers send to push gateways at private, loopback, link-local and other reserved addresses (federation_ip_range_denylist's default ranges), which are refused otherwise so that a pusher cannot make this server reach its own network; for private deployments and tests.",
		field: func(c *Config) any { return &c.PushAllowPrivateAddresses }},
	{key: "push_insecure_skip_verify",
		help:  "Do not verify push gateways' TLS certificates. Development only: anyone on the path can read the notifications.",
		field: func(c *Config) any { return &c.PushInsecureSkipVerify }},
	{key: "database", defaultDoc: "sqlite:<data_dir>/myelin.db",
		help:  "Database: sqlite:PATH (a file, created if missing) or a postgres:// URL.",
		field: func(c *Config) any { return &c.Database }, check: checkDatabase},
	{key: "nats",
		help:  "NATS JetStream server URL(s), comma-separated (nats://host:4222); empty = embedded in-process server in data_dir.",
		field: func(c *Config) any { return &c.NATS }, check: checkNATS},
	{key: "registration_shared_secret",
		help:  "Shared secret that lets admin tools register accounts (Synapse's shared-secret registration); empty = disabled.",
		field: func(c *Config) any { return &c.RegistrationSharedSecret }},
	{key: "open_registration",
		help:  "Let anyone create an account without a token or an administrator.",
		field: func(c *Config) any { return &c.OpenRegistration }},
	{key: "no_rate_limit",
		help:  "Turn off request rate limiting (for tests and benchmarks).",
		field: func(c *Config) any { return &c.NoRateLimit }},
	{key: "trust_x_forwarded_for",
		help:  "Take each client's address from the last entry of the X-Forwarded-For header (set it when a reverse proxy that sets the header is in front of the client API; never when clients connect directly).",
		field: func(c *Config) any { return &c.TrustXForwardedFor }},
	{key: "rate_limit.login_per_minute",
		help:  "Login attempts allowed per minute from one IP address, and failed attempts per account; 0 = unlimited.",
		field: func(c *Config) any { return &c.RateLimit.LoginPerMinute }, check: checkRate(func(c *Config) int { return c.RateLimit.LoginPerMinute })},
	{key: "rate_limit.login_burst",
		help:  "Login attempts allowed at once before login_per_minute applies.",
		field: func(c *Config) any { return &c.RateLimit.LoginBurst }, check: checkBurst(func(c *Config) int { return c.RateLimit.LoginBurst })},
	{key: "rate_limit.registration_per_minute",
		help:  "Registration requests allowed per minute from one IP address (username availability checks: six times as many); 0 = unlimited.",
		field: func(c *Config) any { return &c.RateLimit.RegistrationPerMinute }, check: checkRate(func(c *Config) int { return c.RateLimit.RegistrationPerMinute })},
	{key: "rate_limit.registration_burst",
		help:  "Registration requests allowed at once before registration_per_minute applies.",
		field: func(c *Config) any { return &c.RateLimit.RegistrationBurst }, check: checkBurst(func(c *Config) int { return c.RateLimit.RegistrationBurst })},
	{key: "rate_limit.message_per_minute",
		help:  "Events a user may send per minute; 0 = unlimited.",
		field: func(c *Config) any { return &c.RateLimit.MessagePerMinute }, check: checkRate(func(c *Config) int { return c.RateLimit.MessagePerMinute })},
	{key: "rate_limit.message_burst",
		help:  "Events a user may send at once before message_per_minute applies.",
		field: func(c *Config) any { return &c.RateLimit.MessageBurst }, check: checkBurst(func(c *Config) int { return c.RateLimit.MessageBurst })},
	{key: "rate_limit.join_per_minute",
		help:  "Rooms a user may join per minute; 0 = unlimited.",
		field: func(c *Config) any { return &c.RateLimit.JoinPerMinute }, check: checkRate(func(c *Config) int { return c.RateLimit.JoinPerMinute })},
	{key: "rate_limit.join_burst",
		help:  "Rooms a user may join at once before join_per_minute applies.",
		field: func(c *Config) any { return &c.RateLimit.JoinBurst }, check: checkBurst(func(c *Config) int { return c.RateLimit.JoinBurst })},
	{key: "user_directory_search_all_users",
		help:  "Let the user directory search find every local user; false = only users sharing a room with the searcher or in public rooms.",
		field: func(c *Config) any { return &c.UserDirectorySearchAllUsers }},
	{key: "search_index",
		help:  "Keep the full-text index of room events in <data_dir>/search.bleve and serve POST /search; with several processes, turn it on in one and route /_matrix/client/v3/search to it.",
		field: func(c *Config) any { return &c.SearchIndex }},
	{key: "refreshable_access_token_lifetime",
		help:  "Lifetime of an access token issued with a refresh token, for clients that ask for one (Go duration, e.g. 5m).",
		field: func(c *Config) any { return &c.RefreshableAccessTokenLifetime }, check: checkTokenLifetime},
	{key: "signing_key_path", defaultDoc: "<data_dir>/signing.key",
		help:  "ed25519 signing key file (Synapse's format); generated on first run.",
		field: func(c *Config) any { return &c.SigningKeyPath }},
	{key: "well_known_client_base_url",
		help:  "Served as m.homeserver.base_url in /.well-known/matrix/client; empty = not served.",
		field: func(c *Config) any { return &c.WellKnownClientBaseURL }, check: checkWellKnownClient},
	{key: "well_known_server",
		help:  "Served as m.server (host[:port] of the federation API) in /.well-known/matrix/server; empty = not served.",
		field: func(c *Config) any { return &c.WellKnownServer }, check: checkWellKnownServer},
	{key: "media.store_path", defaultDoc: "<data_dir>/media",
		help:  "Directory of the media repository's files (named by their SHA-256, so identical uploads are stored once).",
		field: func(c *Config) any { return &c.Media.StorePath }},
	{key: "media.max_upload_bytes",
		help:  "Largest media file accepted, uploaded by a user or fetched from another server, in bytes (M_TOO_LARGE above it).",
		field: func(c *Config) any { return &c.Media.MaxUploadBytes }, check: checkPositive64(func(c *Config) int64 { return c.Media.MaxUploadBytes })},
	{key: "media.user_quota_bytes",
		help:  "Total bytes of media one user may upload (403 M_FORBIDDEN above it); 0 = unlimited.",
		field: func(c *Config) any { return &c.Media.UserQuotaBytes }, check: checkNonNegative64(func(c *Config) int64 { return c.Media.UserQuotaBytes })},
	{key: "media.max_pending_uploads",
		help:  "Media IDs a user may have created (POST /_matrix/media/v1/create) and not uploaded yet (429 M_LIMIT_EXCEEDED above it).",
		field: func(c *Config) any { return &c.Media.MaxPendingUploads }, check: checkBurst(func(c *Config) int { return c.Media.MaxPendingUploads })},
	{key: "media.pending_upload_lifetime",
		help:  "How long a created media ID waits for its content before it expires (Go duration, e.g. 24h).",
		field: func(c *Config) any { return &c.Media.PendingUploadLifetime }, check: checkDuration("media.pending_upload_lifetime", func(c *Config) string { return c.Media.PendingUploadLifetime }, false)},
	{key: "media.freeze_unauthenticated",
		help:  "Serve media uploaded (or remote media cached) from now on only through the authenticated /_matrix/client/v1/media endpoints; the legacy /_matrix/media ones answer 404 for it, as the spec's freeze asks.",
		field: func(c *Config) any { return &c.Media.FreezeUnauthenticated }},
	{key: "media.thumbnail_sizes",
		help:  "Thumbnail sizes, made when an image is uploaded and picked from for each request: comma-separated WIDTHxHEIGHT METHOD (crop or scale).",
		field: func(c *Config) any { return &c.Media.ThumbnailSizes }, check: checkThumbnailSizes},
	{key: "media.max_thumbnail_pixels",
		help:  "Largest image thumbnailed, in pixels (width × height, checked before decoding, so decompression bombs are refused).",
		field: func(c *Config) any { return &c.Media.MaxThumbnailPixels }, check: checkPositive64(func(c *Config) int64 { return c.Media.MaxThumbnailPixels })},
	{key: "media.remote_media_lifetime",
		help:  "How long media cached from other servers is kept before a background job deletes it (Go duration, e.g. 720h); empty = forever.",
		field: func(c *Config) any { return &c.Media.RemoteMediaLifetime }, check: checkDuration("media.remote_media_lifetime", func(c *Config) string { return c.Media.RemoteMediaLifetime }, true)},
	{key: "media.url_preview_enabled",
		help:  "Serve URL previews (GET /_matrix/client/v1/media/preview_url): the server fetches pages that users' clients ask about.",
		field: func(c *Config) any { return &c.Media.URLPreviewEnabled }},
	{key: "media.url_preview_ip_range_denylist",
		help:  "IP ranges URL previews never connect to, comma-separated CIDRs checked on every address connected to (redirects included); default: private, loopback, link-local and reserved ranges.",
		field: func(c *Config) any { return &c.Media.URLPreviewIPRangeDenylist }, check: checkIPRanges(func(c *Config) string { return c.Media.URLPreviewIPRangeDenylist })},
	{key: "media.url_preview_ip_range_allowlist",
		help:  "IP ranges exempted from media.url_preview_ip_range_denylist, comma-separated CIDRs; empty = none.",
		field: func(c *Config) any { return &c.Media.URLPreviewIPRangeAllowlist }, check: checkIPRanges(func(c *Config) string { return c.Media.URLPreviewIPRangeAllowlist })},
	{key: "media.url_preview_max_bytes",
		help:  "Largest page or image a URL preview reads, in bytes.",
		field: func(c *Config) any { return &c.Media.URLPreviewMaxBytes }, check: checkPositive64(func(c *Config) int64 { return c.Media.URLPreviewMaxBytes })},
	{key: "max_request_body_bytes",
		help:  "Largest accepted request body outside media uploads, in bytes (at least 65536, the event size limit).",
		field: func(c *Config) any { return &c.MaxRequestBodyBytes }, check: checkMaxBody},
	{key: "log_level",
		help:  "Log level: debug, info, warn or error.",
		field: func(c *Config) any { return &c.LogLevel }, check: checkOneOf(func(c *Config) string { return c.LogLevel }, "debug", "info", "warn", "error")},
	{key: "log_format",
		help:  "Log format: text or json.",
		field: func(c *Config) any { return &c.LogFormat }, check: checkOneOf(func(c *Config) string { return c.LogFormat }, "text", "json")},
	{key: "bcrypt_cost",
		help:  "bcrypt cost for password hashes (4 to 31; each step doubles the time of a login).",
		field: func(c *Config) any { return &c.BcryptCost }, check: checkBcryptCost},
	{key: "shutdown_timeout",
		help:  "How long a graceful shutdown waits for requests in flight (Go duration, e.g. 10s).",
		field: func(c *Config) any { return &c.ShutdownTimeout }, check: checkShutdownTimeout},
}

// optionByKey finds an option by its YAML key.
func optionByKey(key string) *option {
	for _, o := range options {
		if o.key == key {
			return o
		}
	}
	return nil
}

// set parses raw into the option's field of c. The error says which type
// was expected; the caller adds where the value came from.
func (o *option) set(c *Config, raw string) error {
	switch p := o.field(c).(type) {
	case *string:
		*p = raw
	case *bool:
		v, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a boolean: use true or false", raw)
		}
		*p = v
	case *int:
		v, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a whole number: use digits only, e.g. %d", raw, *p)
		}
		*p = v
	case *int64:
		v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number: use digits only, e.g. %d", raw, *p)
		}
		*p = v
	default:
		panic(fmt.Sprintf("config: option %s has unsupported type %T", o.key, p))
	}
	return nil
}

// isBool reports whether the option is a boolean (a flag without a value).
func (o *option) isBool() bool {
	_, ok := o.field(&Config{}).(*bool)
	return ok
}

// format renders the option's value in c as it appears in YAML.
func (o *option) format(c *Config) string {
	switch p := o.field(c).(type) {
	case *string:
		return strconv.Quote(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	}
	panic(fmt.Sprintf("config: option %s has unsupported type", o.key))
}
