package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/storage"
)

func noEnv(string) string { return "" }

// myelin runs the command in-process and returns its exit status and output.
func myelin(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, noEnv)
	return code, out.String(), errOut.String()
}

// wantFailure checks exit status 1 and one stderr line "myelin: ..."
// containing want.
func wantFailure(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if !strings.HasPrefix(stderr, "myelin: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line \"myelin: ...\": %q", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := myelin(t, "version")
	if code != 0 || !strings.HasPrefix(out, "myelin ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %d %q", code, out)
	}
	code, _, errOut := myelin(t, "version", "extra")
	wantFailure(t, code, errOut, `unexpected argument "extra"`)
}

func TestHelpAndUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"create-account", "-h"}} {
		code, out, _ := myelin(t, args...)
		if code != 0 || !strings.Contains(out, "myelin create-account") || !strings.Contains(out, "-server-name") {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	code, _, errOut := myelin(t, "frobnicate")
	wantFailure(t, code, errOut, `unknown command "frobnicate": run `+"`myelin help`")
	code, _, errOut = myelin(t, "--no-such-flag")
	wantFailure(t, code, errOut, "flag provided but not defined: -no-such-flag")
}

func TestServeBadConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "myelin.yaml"), []byte("server_name: \"bad name\"\n"), 0o600)
	code, _, errOut := myelin(t, "--data-dir", dir)
	wantFailure(t, code, errOut, "line 1: server_name: \"bad name\" is not a valid server name")
}

func TestGenerateConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "never-created")
	code, out, errOut := myelin(t, "generate-config", "--data-dir", dir, "--server-name", "gen.example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("generate-config created the data directory")
	}
	// What it prints is a config file that loads to what the flags said.
	file := filepath.Join(t.TempDir(), "printed.yaml")
	os.WriteFile(file, []byte(out), 0o600)
	cfg, err := config.Load([]string{"--config", file}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "gen.example" || cfg.DataDir != dir || !strings.Contains(out, "# Matrix server name") {
		t.Errorf("printed config loads as %+v", cfg)
	}

	code, out, _ = myelin(t, "generate-config", "--markdown")
	if code != 0 || !strings.HasPrefix(out, "# Configuration") || !strings.Contains(out, "| `server_name` | `--server-name` | `MYELIN_SERVER_NAME` |") {
		t.Errorf("--markdown: %d %q", code, out)
	}
	code, _, errOut = myelin(t, "generate-config", "--log-level", "chatty")
	wantFailure(t, code, errOut, "flag --log-level: \"chatty\" is not allowed")
}

func TestGenerateTLS(t *testing.T) {
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caCert, caKey, err := ca.WriteCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, errOut := myelin(t, "generate-tls", "--ca-cert", caCert, "--ca-key", caKey, "--host", "fed.example", "--out", out)
	if code != 0 || !strings.Contains(stdout, "tls.crt") {
		t.Fatalf("exit %d: %s %s", code, stdout, errOut)
	}
	data, err := os.ReadFile(filepath.Join(out, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	leaf := parsePEM(t, data)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "fed.example"}); err != nil {
		t.Error(err)
	}

	code, _, errOut = myelin(t, "generate-tls", "--ca-cert", caCert, "--host", "x", "--out", out)
	wantFailure(t, code, errOut, "--ca-key is missing")
	code, _, errOut = myelin(t, "generate-tls", "--ca-cert", caCert, "--ca-key", caCert, "--host", "x", "--out", out)
	wantFailure(t, code, errOut, "no PEM private key block")
}

func parsePEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateAccount(t *testing.T) {
	dir := t.TempDir()
	base := []string{"create-account", "--data-dir", dir, "--bcrypt-cost", "4"}
	code, out, errOut := myelin(t, append(base, "--user", "alice", "--password", "pw1")...)
	if code != 0 || out != "created account @alice:localhost\n" {
		t.Fatalf("exit %d: %q %q", code, out, errOut)
	}
	code, out, errOut = myelin(t, append(base, "--user", "@Bob:localhost", "--password", "pw2", "--admin")...)
	if code != 0 || out != "created administrator account @bob:localhost\n" {
		t.Fatalf("exit %d: %q %q", code, out, errOut)
	}

	db, err := storage.Open(context.Background(), "sqlite:"+filepath.Join(dir, "myelin.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, a := range []struct {
		localpart, password string
		admin               bool
	}{{"alice", "pw1", false}, {"bob", "pw2", true}} {
		acct, err := db.GetAccount(context.Background(), a.localpart)
		if err != nil {
			t.Fatal(err)
		}
		if acct.IsAdmin != a.admin || bcrypt.CompareHashAndPassword([]byte(acct.PasswordHash), []byte(a.password)) != nil {
			t.Errorf("%s: admin=%v, password hash does not match", a.localpart, acct.IsAdmin)
		}
		if cost, _ := bcrypt.Cost([]byte(acct.PasswordHash)); cost != 4 {
			t.Errorf("bcrypt cost %d, want 4 (bcrypt_cost)", cost)
		}
	}

	failures := []struct {
		args []string
		want string
	}{
		{[]string{"--user", "alice", "--password", "x"}, "@alice:localhost already exists: choose another name"},
		{[]string{"--user", "al ice", "--password", "x"}, `user name "al ice" contains ' '`},
		{[]string{"--user", "@carol:other.example", "--password", "x"}, "is not on this server (localhost)"},
		{[]string{"--user", "@carol", "--password", "x"}, "has no server name"},
		{[]string{"--user", "carol"}, "no password: give one with --password"},
		{[]string{"--password", "x"}, "no user: give one with --user"},
		{[]string{"--user", strings.Repeat("c", 250), "--password", "x"}, "the limit is 255"},
		{[]string{"--user", "carol", "--password", strings.Repeat("p", 73)}, "longer than 72 bytes"},
		{[]string{"--user", "carol", "--password", "x", "--database", "postgres://nobody@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"}, "database"},
	}
	for _, f := range failures {
		code, _, errOut := myelin(t, append(base, f.args...)...)
		wantFailure(t, code, errOut, f.want)
	}
}

func TestRotateSigningKey(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := myelin(t, "rotate-signing-key", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "new signing key ed25519:") {
		t.Fatalf("exit %d: %q %q", code, out, errOut)
	}
	old, err := os.ReadFile(filepath.Join(dir, "old_signing_keys"))
	if err != nil || strings.Count(string(old), "\n") != 1 {
		t.Errorf("old_signing_keys: %q %v", old, err)
	}
	os.WriteFile(filepath.Join(dir, "signing.key"), []byte("garbage\n"), 0o600)
	code, _, errOut = myelin(t, "rotate-signing-key", "--data-dir", dir)
	wantFailure(t, code, errOut, "signing key "+filepath.Join(dir, "signing.key")+" line 1")
}

func TestParseUser(t *testing.T) {
	for in, want := range map[string]string{
		"alice": "alice", "ALICE": "alice", "@alice:s.example": "alice", "a.b_c=d-e/f+g": "a.b_c=d-e/f+g", "007": "007",
	} {
		if got, err := parseUser(in, "s.example"); err != nil || got != want {
			t.Errorf("parseUser(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "@", "@:s.example", "a:b", "ä", "a*", "@a:other"} {
		if _, err := parseUser(in, "s.example"); err == nil {
			t.Errorf("parseUser(%q) accepted", in)
		}
	}
}

// The real binary: -ldflags sets the version, and a failure is one line
// with exit status 1 (no panic, no stack trace).
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "myelin")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "myelin v9.9.9-test (") {
		t.Errorf("version: %q %v", out, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "myelin.yaml"), []byte("bcrypt_cost: [1]\n"), 0o600)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--data-dir", dir)
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v", err)
	}
	wantFailure(t, 1, stderr.String(), "bcrypt_cost must be a single value")
}
