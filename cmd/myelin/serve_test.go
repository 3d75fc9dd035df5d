package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// Serving: the server answers, logs the warnings of dangerous settings, and
// stops with status 0 when its context ends (as on SIGTERM).
func TestServeAndStop(t *testing.T) {
	dir := t.TempDir()
	clientAddr := "127.0.0.1:" + freePort(t)
	args := []string{"--data-dir", dir, "--client-listen", clientAddr, "--federation-listen", "127.0.0.1:" + freePort(t),
		"--open-registration", "--federation-insecure-skip-verify", "--log-format", "json"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &stdout, &stderr, noEnv) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + clientAddr + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("/versions: %s", resp.Status)
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("server exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not answering: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d after shutdown: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown within 30s")
	}
	logs := stderr.String()
	for _, want := range []string{`"level":"WARN","msg":"open registration is on`, `"level":"WARN","msg":"federation TLS verification is off`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "myelin.yaml")); err != nil {
		t.Errorf("first run wrote no config: %v", err)
	}
}

// Every startup failure is one line and status 1.
func TestServeStartupFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name  string
		setup func(dir string)
		args  []string
		want  string
	}{
		{name: "malformed signing key", setup: func(dir string) {
			os.WriteFile(filepath.Join(dir, "signing.key"), []byte("ed25519 x\n"), 0o600)
		}, want: "signing.key line 1"},
		{name: "unreadable signing key", setup: func(dir string) {
			os.Mkdir(filepath.Join(dir, "signing.key"), 0o700)
		}, want: "cannot read signing key"},
		{name: "database unreachable", args: []string{"--database", "postgres://nobody@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"}, want: "127.0.0.1:1"},
		{name: "NATS unreachable", args: []string{"--nats", "nats://127.0.0.1:1"}, want: "127.0.0.1:1"},
		{name: "port in use", args: []string{"--client-listen", busy.Addr().String()}, want: busy.Addr().String()},
		{name: "bad trust CA", args: []string{"--federation-trust-ca", "/nonexistent/ca.pem"}, want: "federation_trust_ca /nonexistent/ca.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(dir)
			}
			args := append([]string{"--data-dir", dir, "--client-listen", "127.0.0.1:0", "--federation-listen", "127.0.0.1:0"}, tc.args...)
			var stdout, stderr syncBuffer
			code := run(context.Background(), args, &stdout, &stderr, noEnv)
			// Log lines (JSON or text) may precede the failure; the last
			// line is the one-line error.
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			last := lines[len(lines)-1] + "\n"
			wantFailure(t, code, last, tc.want)
		})
	}
}
