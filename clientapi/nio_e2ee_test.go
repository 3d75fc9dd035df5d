package clientapi_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestMatrixNioEncryptedChat drives a real server with matrix-nio and
// python3-olm (Debian's packages), an encryption-capable client written by
// others: two users upload keys, share an encrypted room, and each decrypts
// the other's megolm-encrypted messages, which takes /keys/upload,
// /keys/query, /keys/claim, /sendToDevice and the to_device and key count
// sections of /sync (testdata/nio_e2ee.py). CI sets MYELIN_REQUIRE_INTEROP=1,
// which makes a missing library a failure rather than a skip.
func TestMatrixNioEncryptedChat(t *testing.T) {
	needNioOlm(t)
	srv := servertest.Start(t, 1)[0]
	runNioE2EE(t, srv.ClientURL)
}

// TestMatrixNioEncryptedChatAcrossServers is the same chat with its two
// users on two servers: keys are queried and claimed over federation, the
// room keys travel as m.direct_to_device EDUs, and each server follows the
// other's user's device list through m.device_list_update EDUs.
func TestMatrixNioEncryptedChatAcrossServers(t *testing.T) {
	needNioOlm(t)
	servers := servertest.Start(t, 2, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.OpenRegistration = true
	}))
	runNioE2EE(t, servers[0].ClientURL, servers[1].ClientURL)
}

func needNioOlm(t *testing.T) { servertest.NeedPython(t, "nio", "olm") }

// runNioE2EE runs testdata/nio_e2ee.py against the base URLs (alice's,
// then bob's if on another server).
func runNioE2EE(t *testing.T, baseURLs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"testdata/nio_e2ee.py"}, baseURLs...)
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("matrix-nio encrypted chat failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
