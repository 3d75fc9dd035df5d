package clientapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		interopMissing(t, "Node.js is required for the matrix-js-sdk test: %v", err)
	}
	if _, err := os.Stat(filepath.Join(jssdkDir, "node_modules", "matrix-js-sdk")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		install.Dir = jssdkDir
		if out, err := install.CombinedOutput(); err != nil {
			interopMissing(t, "installing matrix-js-sdk (npm ci in %s): %v\n%s", jssdkDir, err, out)
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

// needPython skips the test, or fails it under MYELIN_REQUIRE_INTEROP,
// unless Debian's /usr/bin/python3 imports the modules (python3-matrix-nio
// is "nio", python3-olm "olm"; .ci/run installs them).
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import "+strings.Join(modules, ", ")).Run(); err != nil {
		interopMissing(t, "/usr/bin/python3 cannot import %s (apt-get install python3-matrix-nio python3-olm): %v",
			strings.Join(modules, ", "), err)
	}
}

// interopMissing skips the test, or fails it when MYELIN_REQUIRE_INTEROP
// is set.
func interopMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("MYELIN_REQUIRE_INTEROP") != "" {
		t.Fatalf(format+" (MYELIN_REQUIRE_INTEROP is set)", args...)
	}
	t.Skipf(format, args...)
}
