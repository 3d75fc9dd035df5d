package federation_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestMatrixNioChatAcrossServers is the client API's matrix-nio chat
// (clientapi/testdata/nio_chat.py) with its two users on two servers: a
// client library written by others invites, joins and chats through
// federation, and pages the history back.
func TestMatrixNioChatAcrossServers(t *testing.T) {
	servertest.NeedPython(t, "nio")
	servers := servertest.Start(t, 2, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.OpenRegistration = true
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "../clientapi/testdata/nio_chat.py",
		servers[0].ClientURL, servers[1].ClientURL).CombinedOutput()
	if err != nil {
		t.Fatalf("matrix-nio chat across servers failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
