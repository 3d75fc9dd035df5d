package clientapi_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestMatrixNioChat drives a real server with matrix-nio, a client library
// written by others (Debian's python3-matrix-nio): register, create a room,
// invite, join, chat, paginate the history (testdata/nio_chat.py). CI sets
// MYELIN_REQUIRE_INTEROP=1, which makes a missing library a failure rather
// than a skip.
func TestMatrixNioChat(t *testing.T) {
	servertest.NeedPython(t, "nio")
	srv := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.OpenRegistration = true
	}))[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/nio_chat.py", srv.ClientURL).CombinedOutput()
	if err != nil {
		t.Fatalf("matrix-nio chat failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
