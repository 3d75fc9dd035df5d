package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/internal/server"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/storage"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
// Empty means the module version from the build information, as the
// server reports it (server.Version).
var version = ""

func versionString() string {
	v := version
	if v == "" {
		v = server.Version()
	}
	var revision string
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				revision = ", " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("myelin %s (%s, %s/%s%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, revision)
}

func printVersion(_ context.Context, args []string, stdout io.Writer, _ func(string) string) error {
	if err := parseFlags(flag.NewFlagSet("version", flag.ContinueOnError), args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// generateConfig prints the config file that the given flags and
// environment amount to (the existing file included), or with --markdown
// the documentation of every option. It writes nothing to disk.
func generateConfig(_ context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("generate-config", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print docs/configuration.md instead")
	f := config.AddFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *markdown {
		return config.WriteMarkdown(stdout)
	}
	cfg, err := f.Resolve(getenv)
	if err != nil {
		return err
	}
	return config.WriteDocumented(stdout, cfg)
}

// createAccount adds a local account directly to the database; the server
// may be running meanwhile.
func createAccount(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("create-account", flag.ContinueOnError)
	user := fs.String("user", "", "localpart or full user ID (@name:server) of the new account")
	password := fs.String("password", "", "its password")
	admin := fs.Bool("admin", false, "make the account a server administrator")
	cfg, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	localpart, err := parseUser(*user, cfg.ServerName)
	if err != nil {
		return err
	}
	if *password == "" {
		return errors.New("no password: give one with --password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(*password), cfg.BcryptCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return errors.New("the password is longer than 72 bytes, which bcrypt cannot hash: choose a shorter one")
	}
	if err != nil {
		return fmt.Errorf("hashing the password: %v: check bcrypt_cost", err)
	}
	db, err := storage.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer db.Close()
	userID := "@" + localpart + ":" + cfg.ServerName
	if err := db.CreateAccount(ctx, localpart, string(hash), *admin); err != nil {
		if errors.Is(err, storage.ErrAccountExists) {
			return fmt.Errorf("%s already exists: choose another name", userID)
		}
		return fmt.Errorf("creating %s: %v: check that the database is reachable and writable", userID, err)
	}
	kind := "account"
	if *admin {
		kind = "administrator account"
	}
	fmt.Fprintf(stdout, "created %s %s\n", kind, userID)
	return nil
}

// parseUser returns the localpart of a user given as a localpart or as a
// full user ID of this server, checked against the user ID grammar of the
// spec's appendices ("User Identifiers"). Upper case is folded to lower
// case, as the spec asks of servers creating user IDs.
func parseUser(user, serverName string) (string, error) {
	if user == "" {
		return "", errors.New("no user: give one with --user NAME or --user @NAME:" + serverName)
	}
	localpart := user
	if strings.HasPrefix(user, "@") {
		lp, server, ok := strings.Cut(user[1:], ":")
		if !ok {
			return "", fmt.Errorf("user ID %q has no server name: write @NAME:%s or just NAME", user, serverName)
		}
		if server != serverName {
			return "", fmt.Errorf("user ID %q is not on this server (%s): write @NAME:%s or just NAME", user, serverName, serverName)
		}
		localpart = lp
	}
	localpart = strings.ToLower(localpart)
	if localpart == "" {
		return "", errors.New("the user name is empty: give one with --user NAME")
	}
	for _, r := range localpart {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-.=_/+", r)) {
			return "", fmt.Errorf("user name %q contains %q: use only a-z, 0-9 and - . = _ / +", localpart, r)
		}
	}
	if n := len("@" + localpart + ":" + serverName); n > 255 {
		return "", fmt.Errorf("user ID @%s:%s is %d bytes long: the limit is 255, choose a shorter name", localpart, serverName, n)
	}
	return localpart, nil
}

func generateTLS(_ context.Context, args []string, stdout io.Writer, _ func(string) string) error {
	fs := flag.NewFlagSet("generate-tls", flag.ContinueOnError)
	caCert := fs.String("ca-cert", "", "CA certificate (PEM)")
	caKey := fs.String("ca-key", "", "CA private key (PEM: RSA, ECDSA or Ed25519)")
	host := fs.String("host", "", "DNS name or IP address the certificate is for")
	out := fs.String("out", "", "directory to write tls.crt and tls.key to")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, req := range []struct{ name, value string }{{"ca-cert", *caCert}, {"ca-key", *caKey}, {"host", *host}, {"out", *out}} {
		if req.value == "" {
			return fmt.Errorf("--%s is missing: usage: myelin generate-tls --ca-cert FILE --ca-key FILE --host NAME --out DIR", req.name)
		}
	}
	if err := tlsutil.GenerateSigned(*caCert, *caKey, *host, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s/tls.crt and %s/tls.key for %s\n", *out, *out, *host)
	return nil
}

// rotateSigningKey rotates the key in the data directory. A running server
// keeps signing with the key it loaded until it restarts.
func rotateSigningKey(_ context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cfg, err := loadConfig(flag.NewFlagSet("rotate-signing-key", flag.ContinueOnError), args, getenv)
	if err != nil {
		return err
	}
	ring, err := keys.LoadOrGenerate(cfg.SigningKeyPath)
	if err != nil {
		return err
	}
	oldID, _ := ring.Current()
	if err := ring.Rotate(time.Now()); err != nil {
		return err
	}
	newID, _ := ring.Current()
	fmt.Fprintf(stdout, "new signing key %s; %s is kept as an old verify key; restart myelin to sign with the new key\n", newID, oldID)
	return nil
}
