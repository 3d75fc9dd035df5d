package config

import (
	"bytes"
	"flag"
	"net/netip"

	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// env turns a map into a getenv function.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		ConfigPath:          "myelin-data/myelin.yaml",
		ServerName:          "localhost",
		DataDir:             "./myelin-data",
		ClientListen:        ":8008",
		FederationListen:    ":8448",
		ACME:                ACMEConfig{CacheDir: "myelin-data/acme"},
		Database:            "sqlite:myelin-data/myelin.db",
		SigningKeyPath:      "myelin-data/signing.key",
		MaxRequestBodyBytes: 1 << 20,
		LogLevel:            "info",
		LogFormat:           "text",
		BcryptCost:          12,
		ShutdownTimeout:     "10s",
		RateLimit: RateLimitConfig{
			LoginPerMinute: 10, LoginBurst: 10,
			RegistrationPerMinute: 10, RegistrationBurst: 5,
			MessagePerMinute: 120, MessageBurst: 30,
			JoinPerMinute: 30, JoinBurst: 10,
		},
		RefreshableAccessTokenLifetime: "5m",
		UserDirectorySearchAllUsers:    true,
		SearchIndex:                    true,
		// Synapse's DEFAULT_IP_RANGE_BLOCKLIST.
		FederationIPRangeDenylist: "127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, " +
			"192.0.0.0/24, 169.254.0.0/16, 192.88.99.0/24, 198.18.0.0/15, 192.0.2.0/24, 198.51.100.0/24, " +
			"203.0.113.0/24, 224.0.0.0/4, ::1/128, fe80::/10, fc00::/7, 2001:db8::/32, ff00::/8, fec0::/10",
		Media: MediaConfig{
			StorePath:                 "myelin-data/media",
			MaxUploadBytes:            100 << 20,
			MaxPendingUploads:         5,
			PendingUploadLifetime:     "24h",
			ThumbnailSizes:            "32x32 crop, 96x96 crop, 320x240 scale, 640x480 scale, 800x600 scale",
			MaxThumbnailPixels:        32_000_000,
			URLPreviewEnabled:         true,
			URLPreviewIPRangeDenylist: DefaultFederationIPRangeDenylist,
			URLPreviewMaxBytes:        10 << 20,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", c, want)
	}
	if d := c.ShutdownTimeoutDuration(); d.String() != "10s" {
		t.Errorf("ShutdownTimeoutDuration = %v", d)
	}
}

// Every option has a supported type, a help line and unique names.
func TestOptionTable(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range options {
		if o.help == "" || strings.Contains(o.help, "\n") {
			t.Errorf("%s: help must be one line", o.key)
		}
		o.format(Default()) // panics on an unsupported type
		for _, name := range []string{"key " + o.key, o.flagName(), o.envName()} {
			if seen[name] {
				t.Errorf("%s: name %s used twice", o.key, name)
			}
			seen[name] = true
		}
	}
	// The names other packages, tests and tooling rely on.
	for _, f := range []string{"config", "data-dir", "server-name", "client-listen", "federation-listen", "tls-cert", "tls-key",
		"federation-trust-ca", "federation-insecure-skip-verify", "database", "nats", "registration-shared-secret",
		"open-registration", "no-rate-limit"} {
		if !seen[f] {
			t.Errorf("flag --%s missing", f)
		}
		env := "MYELIN_" + strings.ToUpper(strings.ReplaceAll(f, "-", "_"))
		if !seen[env] {
			t.Errorf("environment variable %s missing", env)
		}
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "myelin.yaml")
	writeFile(t, cfgPath, "server_name: file.example\nclient_listen: \"127.0.0.1:1001\"\nfederation_listen: \"127.0.0.1:2001\"\nlog_level: debug\nbcrypt_cost: 5\n")
	getenv := env(map[string]string{
		"MYELIN_CLIENT_LISTEN":     "127.0.0.1:1002",
		"MYELIN_FEDERATION_LISTEN": "127.0.0.1:2002",
		"MYELIN_NO_RATE_LIMIT":     "true",
		"MYELIN_BCRYPT_COST":       "6",
	})
	c, err := Load([]string{"--data-dir", dir, "--federation-listen=127.0.0.1:2003", "--open-registration", "--bcrypt-cost", "7"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"default", c.LogFormat, "text"},
		{"file over default", c.ServerName, "file.example"},
		{"file over default", c.LogLevel, "debug"},
		{"env over file", c.ClientListen, "127.0.0.1:1002"},
		{"flag over env", c.FederationListen, "127.0.0.1:2003"},
		{"config path from data dir", c.ConfigPath, cfgPath},
		{"database from data dir", c.Database, "sqlite:" + filepath.Join(dir, "myelin.db")},
		{"signing key from data dir", c.SigningKeyPath, filepath.Join(dir, "signing.key")},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if !c.NoRateLimit || !c.OpenRegistration || c.BcryptCost != 7 {
		t.Errorf("NoRateLimit=%v OpenRegistration=%v BcryptCost=%d", c.NoRateLimit, c.OpenRegistration, c.BcryptCost)
	}
}

// --config and MYELIN_CONFIG pick the file; the flag wins.
func TestConfigPathSources(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeFile(t, a, "server_name: a.example\ndata_dir: "+dir+"\n")
	writeFile(t, b, "server_name: b.example\ndata_dir: "+dir+"\n")
	c, err := Load(nil, env(map[string]string{"MYELIN_CONFIG": a}))
	if err != nil || c.ServerName != "a.example" || c.ConfigPath != a {
		t.Fatalf("env: %+v, %v", c, err)
	}
	c, err = Load([]string{"--config", b}, env(map[string]string{"MYELIN_CONFIG": a}))
	if err != nil || c.ServerName != "b.example" || c.ConfigPath != b {
		t.Fatalf("flag: %+v, %v", c, err)
	}
}

// A data_dir set in the file moves the defaults derived from it; explicit
// paths stay.
func TestDerivedDefaults(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "elsewhere")
	writeFile(t, filepath.Join(dir, "myelin.yaml"), "data_dir: "+other+"\nsigning_key_path: /keys/k\n")
	c, err := Load([]string{"--config", filepath.Join(dir, "myelin.yaml")}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != other || c.Database != "sqlite:"+filepath.Join(other, "myelin.db") ||
		c.ACME.CacheDir != filepath.Join(other, "acme") || c.SigningKeyPath != "/keys/k" {
		t.Errorf("got %+v", c)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("data_dir not created: %v", err)
	}
}

func TestFirstRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	args := []string{"--data-dir", dir, "--server-name", "first.example:8448", "--registration-shared-secret", "s3cret"}
	getenv := env(map[string]string{"MYELIN_ACME_EMAIL": "admin@first.example", "MYELIN_NO_RATE_LIMIT": "1"})
	c1, err := Load(args, getenv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(c1.ConfigPath)
	if err != nil {
		t.Fatalf("first run wrote no config file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(c1.ConfigPath)
	text := string(data)
	// Every setting is in the file, with a comment line above it.
	lines := strings.Split(text, "\n")
	for _, o := range options {
		if o.fileless {
			continue
		}
		name := o.key[strings.LastIndexByte(o.key, '.')+1:]
		found := false
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), name+": ") && i > 0 && strings.TrimSpace(lines[i-1]) == "# "+o.help {
				found = true
			}
		}
		if !found {
			t.Errorf("%s missing from the written file or without its comment", o.key)
		}
	}
	if strings.Contains(text, "s3cret") {
		t.Error("the shared secret given by flag was written into the file")
	}

	// The same run again (same flags and environment) gives the same
	// configuration.
	again, err := Load(args, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, c1) {
		t.Errorf("second run differs:\n got %+v\nwant %+v", again, c1)
	}
	// Without flags or environment, the file alone keeps the server's name
	// and place; everything else is back to the defaults.
	c2, err := Load([]string{"--config", c1.ConfigPath}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.ServerName, want.DataDir, want.ConfigPath = "first.example:8448", dir, c1.ConfigPath
	want.Database, want.SigningKeyPath, want.ACME.CacheDir = c1.Database, c1.SigningKeyPath, c1.ACME.CacheDir
	want.Media.StorePath = c1.Media.StorePath
	if !reflect.DeepEqual(c2, want) {
		t.Errorf("file alone loads as\n %+v\nwant %+v", c2, want)
	}
	if c1.Database != "sqlite:"+filepath.Join(dir, "myelin.db") {
		t.Errorf("database = %q", c1.Database)
	}
	// A second run leaves the file alone.
	if after, _ := os.ReadFile(c1.ConfigPath); !bytes.Equal(after, data) {
		t.Error("second run rewrote the config file")
	}
}

// WriteDocumented round-trips every non-default value too.
func TestWriteDocumentedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.DataDir = dir
	c.ServerName = "[::1]:8448"
	c.ClientListen = "127.0.0.1:0"
	c.TLSCert, c.TLSKey = "/etc/c.pem", "/etc/k.pem"
	c.ACME = ACMEConfig{Email: "a@b.c", DirectoryURL: "https://acme.example/dir", CacheDir: "/var/acme"}
	c.FederationTrustCA = "/etc/ca.pem"
	c.FederationInsecureSkipVerify = true
	c.TrustedKeyServers = "matrix.org,[::1]:8448"
	c.FederationIPRangeDenylist, c.FederationIPRangeAllowlist = "", "10.0.0.0/8, fd00::/8"
	c.Database = "postgres://u:p@db:5432/m?sslmode=disable"
	c.NATS = "nats://a:4222,nats://b:4222"
	c.RegistrationSharedSecret = "quote\" and \\ and # and 'x'"
	c.OpenRegistration, c.NoRateLimit = true, true
	c.SigningKeyPath = "/k"
	c.WellKnownClientBaseURL = "https://m.example"
	c.WellKnownServer = "m.example:443"
	c.MaxRequestBodyBytes = 65536
	c.LogLevel, c.LogFormat = "warn", "json"
	c.BcryptCost = 4
	c.ShutdownTimeout = "1m30s"
	c.ConfigPath = filepath.Join(dir, "myelin.yaml")
	var buf bytes.Buffer
	if err := WriteDocumented(&buf, c); err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.ConfigPath, buf.String())
	got, err := Load([]string{"--config", c.ConfigPath}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
}

func TestResolveWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f := AddFlags(fs)
	if err := fs.Parse([]string{"--data-dir", dir, "--server-name", "r.example"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.Resolve(noEnv)
	if err != nil || c.ServerName != "r.example" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Resolve created %s", dir)
	}
}

func TestEmptyAndNullValues(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "myelin.yaml"), "# only a comment\n")
	if c, err := Load([]string{"--data-dir", dir}, noEnv); err != nil || c.ServerName != "localhost" {
		t.Fatalf("comment-only file: %+v %v", c, err)
	}
	writeFile(t, filepath.Join(dir, "myelin.yaml"), "server_name:\nacme:\n  email:\n")
	if c, err := Load([]string{"--data-dir", dir}, noEnv); err != nil || c.ServerName != "localhost" {
		t.Fatalf("null values: %+v %v", c, err)
	}
}

func TestServerNames(t *testing.T) {
	valid := []string{"matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]",
		"[1234:5678::abcd]:5678", "localhost", "127.0.0.1:38448", "a-b.c", "[::1]", "Example.ORG"}
	for _, s := range valid {
		if err := ValidServerName(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	invalid := []string{"", ":8448", "exa mple.org", "example.org:", "example.org:abc", "example.org:123456",
		"example.org:0", "example.org:70000", "a..b", ".a", "a.", "1.2.3.256", "1.2.3", "[1234:5678::abcd",
		"[nothex::]", "[1.2.3.4]", "::1", "[::1]x", "ex_ample.org", "ex/ample", "exämple.org", strings.Repeat("a", 256)}
	for _, s := range invalid {
		if err := ValidServerName(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// Every bad input gives one error line naming where the value came from,
// the setting, and a fix.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name string
		file string // config file content; "" = no file
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{name: "unknown key with suggestion", file: "server_name: a.b\nsever_name: x\n",
			want: []string{"line 2", "unknown key sever_name", "did you mean server_name?"}},
		{name: "unknown key far from any", file: "colour: blue\n", want: []string{"line 1", "unknown key colour", "remove it"}},
		{name: "unknown nested key", file: "acme:\n  enabeld: true\n", want: []string{"line 2", "acme.enabeld", "did you mean acme.enabled?"}},
		{name: "repeated key", file: "log_level: info\nlog_level: debug\n", want: []string{"line 2", "log_level appears twice"}},
		{name: "bool not a bool", file: "open_registration: maybe\n", want: []string{"line 1", "open_registration", `"maybe" is not a boolean: use true or false`}},
		{name: "int not an int", file: "bcrypt_cost: twelve\n", want: []string{"line 1", "bcrypt_cost", `"twelve" is not a whole number`}},
		{name: "list instead of value", file: "server_name: [a, b]\n", want: []string{"line 1", "server_name must be a single value", "server_name: \"localhost\""}},
		{name: "section not a mapping", file: "acme: true\n", want: []string{"line 1", "acme must be a mapping"}},
		{name: "top level not a mapping", file: "- a\n- b\n", want: []string{"line 1", "the file must be a mapping"}},
		{name: "yaml syntax", file: "server_name: \"abc\n", want: []string{"yaml:", "fix the YAML syntax"}},
		{name: "server name in file", file: "server_name: \"bad name\"\n", want: []string{"line 1: server_name", `"bad name" is not a valid server name`, "e.g. example.org"}},
		{name: "server name by flag", args: []string{"--server-name", "a..b"}, want: []string{"flag --server-name:", "empty label"}},
		{name: "server name by env", env: map[string]string{"MYELIN_SERVER_NAME": "x:99999"}, want: []string{"environment variable MYELIN_SERVER_NAME:", "outside 1-65535"}},
		{name: "listen address", args: []string{"--client-listen", "8008"}, want: []string{"flag --client-listen:", `"8008" is not a listen address`, "e.g. :8008"}},
		{name: "listen port", file: "federation_listen: \"host:http\"\n", want: []string{"line 1: federation_listen", "no numeric port"}},
		{name: "database scheme", args: []string{"--database", "mysql://x/y"}, want: []string{"flag --database:", "not a supported database", "use sqlite:PATH or postgres://"}},
		{name: "database sqlite no path", env: map[string]string{"MYELIN_DATABASE": "sqlite:"}, want: []string{"MYELIN_DATABASE", "has no file path"}},
		{name: "database postgres no host", args: []string{"--database", "postgres:///db"}, want: []string{"has no host"}},
		{name: "nats scheme", args: []string{"--nats", "http://x:4222"}, want: []string{"flag --nats:", `scheme "http"`}},
		{name: "duration", file: "shutdown_timeout: 10\n", want: []string{"line 1: shutdown_timeout", `"10" is not a positive duration`, "e.g. 10s"}},
		{name: "negative duration", args: []string{"--shutdown-timeout=-1s"}, want: []string{"not a positive duration"}},
		{name: "log level", args: []string{"--log-level", "loud"}, want: []string{"flag --log-level:", "use one of debug, info, warn, error"}},
		{name: "log format", env: map[string]string{"MYELIN_LOG_FORMAT": "xml"}, want: []string{"MYELIN_LOG_FORMAT", "use one of text, json"}},
		{name: "bcrypt cost", args: []string{"--bcrypt-cost", "40"}, want: []string{"flag --bcrypt-cost:", "outside 4-31"}},
		{name: "body limit", file: "max_request_body_bytes: 1000\n", want: []string{"max_request_body_bytes", "at least 65536"}},
		{name: "env bool", env: map[string]string{"MYELIN_OPEN_REGISTRATION": "yes please"}, want: []string{"environment variable MYELIN_OPEN_REGISTRATION:", "not a boolean"}},
		{name: "flag bool", args: []string{"--no-rate-limit=sure"}, want: []string{"flag --no-rate-limit:", "not a boolean"}},
		{name: "unknown flag", args: []string{"--serve-name", "x"}, want: []string{"flag provided but not defined", "myelin help"}},
		{name: "stray argument", args: []string{"serve"}, want: []string{`unexpected argument "serve"`}},
		{name: "tls cert without key", args: []string{"--tls-cert", "/c.pem"}, want: []string{"flag --tls-cert: tls_cert is set but tls_key is not"}},
		{name: "tls key without cert", file: "tls_key: /k.pem\n", want: []string{"line 1: tls_key is set but tls_cert is not"}},
		{name: "acme and cert", args: []string{"--acme-enabled", "--server-name", "a.example", "--tls-cert", "c", "--tls-key", "k"}, want: []string{"acme.enabled is true but tls_cert is also set"}},
		{name: "acme on IP", args: []string{"--acme-enabled", "--server-name", "1.2.3.4"}, want: []string{"acme.enabled needs a public DNS name in server_name"}},
		{name: "acme on delegated IP", args: []string{"--acme-enabled", "--server-name", "a.example", "--well-known-server", "1.2.3.4:443"}, want: []string{"flag --acme-enabled: acme.enabled needs a public DNS name in well_known_server"}},
		{name: "acme directory", args: []string{"--acme-directory-url", "ftp://x"}, want: []string{"not an http(s) URL"}},
		{name: "well-known client", file: "well_known_client_base_url: matrix.example.org\n", want: []string{"well_known_client_base_url", "not an http(s) URL", "https://matrix.example.org"}},
		{name: "well-known server", args: []string{"--well-known-server", "https://m.example"}, want: []string{"flag --well-known-server:", "not a valid host[:port]"}},
		{name: "trusted key servers", args: []string{"--trusted-key-servers", "matrix.org, not a name"}, want: []string{"flag --trusted-key-servers:", `"not a name" is not a valid server name`, "separated by commas"}},
		{name: "ip range denylist", args: []string{"--federation-ip-range-denylist", "10.0.0.0/8, 10.0.0.0/33"}, want: []string{"flag --federation-ip-range-denylist:", `"10.0.0.0/33" is not an IP range`, "separated by commas"}},
		{name: "ip range allowlist", file: "federation_ip_range_allowlist: \"localhost\"\n", want: []string{"line 1: federation_ip_range_allowlist", `"localhost" is not an IP range`}},
		{name: "ip range with a zone", env: map[string]string{"MYELIN_FEDERATION_IP_RANGE_ALLOWLIST": "fe80::1%eth0"}, want: []string{"MYELIN_FEDERATION_IP_RANGE_ALLOWLIST", "is not an IP range"}},
		{name: "empty data dir", args: []string{"--data-dir="}, want: []string{"flag --data-dir: is empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				writeFile(t, filepath.Join(dir, "myelin.yaml"), tc.file)
			}
			args := append([]string{"--data-dir", dir}, tc.args...)
			_, err := Load(args, env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			if tc.file != "" && strings.Contains(msg, "line ") && !strings.Contains(msg, filepath.Join(dir, "myelin.yaml")) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tc.file == "" {
				if _, err := os.Stat(filepath.Join(dir, "myelin.yaml")); err == nil {
					t.Error("a bad configuration was written to disk")
				}
			}
		})
	}
}

func TestUnreadableConfigFile(t *testing.T) {
	dir := t.TempDir()
	// A directory cannot be read as a file, even by root.
	if err := os.Mkdir(filepath.Join(dir, "myelin.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Load([]string{"--data-dir", dir}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "cannot read config file "+filepath.Join(dir, "myelin.yaml")) {
		t.Errorf("error = %v", err)
	}
}

func TestUnwritableDataDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, "")
	writeFile(t, filepath.Join(dir, "myelin.yaml"), "")
	_, err := Load([]string{"--config", filepath.Join(dir, "myelin.yaml"), "--data-dir", filepath.Join(file, "sub")}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "--data-dir") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error = %v", err)
	}
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, o := range options {
		row := "| `--" + o.flagName() + "` | `" + o.envName() + "` |"
		if !strings.Contains(md, row) {
			t.Errorf("markdown lacks the row of %s", o.key)
		}
	}
	if !strings.Contains(md, "| `database` | `--database` | `MYELIN_DATABASE` | `sqlite:<data_dir>/myelin.db` |") {
		t.Error("derived default not documented")
	}
}

func TestFlagHelp(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFlagHelp(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  --server-name VALUE\n", "(MYELIN_SERVER_NAME; default \"localhost\")", "  --open-registration\n", "  --bcrypt-cost N\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("flag help lacks %q", want)
		}
	}
}

func TestTrustedKeyServerList(t *testing.T) {
	c := Default()
	if l := c.TrustedKeyServerList(); len(l) != 0 {
		t.Fatalf("default notaries %v, want none", l)
	}
	c.TrustedKeyServers = " matrix.org ,,example.com:8448, "
	if l := c.TrustedKeyServerList(); !reflect.DeepEqual(l, []string{"matrix.org", "example.com:8448"}) {
		t.Fatalf("TrustedKeyServerList = %q", l)
	}
}

func TestFederationIPRanges(t *testing.T) {
	c := Default()
	deny, allow, err := c.FederationIPRanges()
	if err != nil || len(deny) != 19 || len(allow) != 0 {
		t.Fatalf("default: %v, %v, %v", deny, allow, err)
	}
	// Bare addresses are ranges of one; host bits are dropped; empty
	// entries are skipped.
	c.FederationIPRangeDenylist = " 10.1.2.3/8 ,, 192.0.2.7, ::1, 2001:db8::5/32 "
	c.FederationIPRangeAllowlist = ""
	deny, allow, err = c.FederationIPRanges()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("2001:db8::/32")}
	if !reflect.DeepEqual(deny, want) || len(allow) != 0 {
		t.Fatalf("deny %v allow %v", deny, allow)
	}
	c.FederationIPRangeAllowlist = "10.0.0.0/8, nonsense"
	if _, _, err := c.FederationIPRanges(); err == nil || !strings.Contains(err.Error(), "federation_ip_range_allowlist") {
		t.Fatalf("bad allowlist: %v", err)
	}
}
