package clientapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// jssdkDir holds the matrix-js-sdk test: its script, and package.json and
// package-lock.json pinning the library (node_modules is not committed:
// .ci/run installs it, or this test does when it is missing).
const jssdkDir = "testdata/jssdk"

// TestMatrixJSSDKThreads drives a real server with matrix-js-sdk, the
// library of Element Web, written by others: bundled edits, thread
// summaries, the thread list and live thread replies as a fresh client with
// thread support sees them (testdata/jssdk/threads.mjs). Without Node.js
// or the library it skips, unless MYELIN_REQUIRE_INTEROP is set (as CI
// sets it), which makes that a failure.
func TestMatrixJSSDKThreads(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		servertest.InteropMissing(t, "Node.js is required for the matrix-js-sdk test: %v", err)
	}
	if _, err := os.Stat(filepath.Join(jssdkDir, "node_modules", "matrix-js-sdk")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		install.Dir = jssdkDir
		if out, err := install.CombinedOutput(); err != nil {
			servertest.InteropMissing(t, "installing matrix-js-sdk (npm ci in %s): %v\n%s", jssdkDir, err, out)
		}
	}
	srv := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.OpenRegistration = true
	}))[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "threads.mjs", srv.ClientURL)
	cmd.Dir = jssdkDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("matrix-js-sdk threads test failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
