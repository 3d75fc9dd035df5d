package servertest

// Interoperability tests drive Myelin with implementations written by
// others (matrix-nio, python3-olm, matrix-js-sdk, python3-signedjson),
// installed outside Go. Without them such a test skips, so that `go test
// ./...` passes on a machine with Go alone; CI installs them and sets
// MYELIN_REQUIRE_INTEROP, which makes a missing one a failure instead.

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InteropMissing skips the test, or fails it when MYELIN_REQUIRE_INTEROP
// is set, saying what is missing.
func InteropMissing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("MYELIN_REQUIRE_INTEROP") != "" {
		t.Fatalf(format+" (MYELIN_REQUIRE_INTEROP is set)", args...)
	}
	t.Skipf(format, args...)
}

// NeedPython makes sure Debian's /usr/bin/python3 imports the modules
// (python3-matrix-nio is "nio", python3-olm "olm", python3-signedjson
// "signedjson.sign"), else InteropMissing.
func NeedPython(t testing.TB, modules ...string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import "+strings.Join(modules, ", ")).Run(); err != nil {
		InteropMissing(t, "/usr/bin/python3 cannot import %s (apt-get install python3-matrix-nio python3-olm python3-signedjson): %v",
			strings.Join(modules, ", "), err)
	}
}
