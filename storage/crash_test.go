package storage_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// crashChildEnv, when set to a DSN, turns the test binary into the child
// of TestCrashLosesNothingAcknowledged.
const crashChildEnv = "MYELIN_STORAGE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(crashChildEnv); dsn != "" {
		crashChild(dsn)
		return
	}
	os.Exit(m.Run())
}

// crashChild writes accounts from several goroutines, three per
// transaction, and prints "ack LOCALPART" for each row once its
// transaction has committed, until it is killed (or a minute passes, in
// case the parent died without killing it).
func crashChild(dsn string) {
	ctx := context.Background()
	db, err := storage.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex // one unbuffered write per line, so a line is whole
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				var lps []string
				err := db.WithTx(ctx, func(tx *storage.Tx) error {
					lps = lps[:0]
					for k := range 3 {
						lp := fmt.Sprintf("g%d-%d-%d", g, n, k)
						if err := tx.CreateAccount(ctx, lp, "hash", false); err != nil {
							return err
						}
						lps = append(lps, lp)
					}
					return nil
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				out.Lock()
				for _, lp := range lps {
					os.Stdout.WriteString("ack " + lp + "\n")
				}
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestCrashLosesNothingAcknowledged kills (SIGKILL) a process in the middle
// of a stream of commits, then checks that every row it acknowledged is in
// the database and that an SQLite file passes integrity_check.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dsn := storagetest.DSN(t, d)
			// Create the schema first, so the child spends its life writing.
			db, err := storage.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()

			acked := runAndKill(t, dsn, 600)

			db, err = storage.Open(context.Background(), dsn)
			if err != nil {
				t.Fatalf("reopening after the crash: %v", err)
			}
			defer db.Close()
			for _, lp := range acked {
				if _, err := db.GetAccount(context.Background(), lp); err != nil {
					t.Errorf("acknowledged row %s lost: %v", lp, err)
				}
			}
			if d == storage.SQLite {
				checkIntegrity(t, strings.TrimPrefix(dsn, "sqlite:"))
			}
			t.Logf("%d acknowledged rows, all present", len(acked))
		})
	}
}

// runAndKill starts the child on dsn, SIGKILLs it once it has acknowledged
// killAfter rows (while it is still writing), and returns every row it
// acknowledged, including lines that reached the pipe before the kill.
func runAndKill(t *testing.T, dsn string, killAfter int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dsn)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // in case we fail before the kill

	var acked []string
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lp, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked = append(acked, lp)
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed, after %d rows: %v\n%s", len(acked), err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	return acked
}

// checkIntegrity runs PRAGMA integrity_check on the file with a plain
// connection of its own.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var result string
	if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "ok" {
		t.Errorf("integrity_check after the crash: %s", result)
	}
}
