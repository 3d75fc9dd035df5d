package roomserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/storage"
)

// crashChildEnv, when set to "DIR|DSN|ROOM", turns the test binary into
// the child of TestKillDuringSends.
const crashChildEnv = "MYELIN_ROOMSERVER_CRASH_CHILD"

const crashSenders = 4

func TestMain(m *testing.M) {
	if arg := os.Getenv(crashChildEnv); arg != "" {
		crashChild(arg)
		return
	}
	os.Exit(m.Run())
}

// crashChild runs a roomserver and sends messages with transaction IDs
// from several goroutines, printing "ack TXN EVENT_ID" once Send returns,
// until it is killed (or a minute passes).
func crashChild(arg string) {
	parts := strings.SplitN(arg, "|", 3)
	dir, dsn, roomID := parts[0], parts[1], parts[2]
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ring, err := keys.LoadOrGenerate(filepath.Join(dir, "signing.key"))
	if err != nil {
		fail(err)
	}
	db, err := storage.Open(ctx, dsn)
	if err != nil {
		fail(err)
	}
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Namespace: "rstest"})
	if err != nil {
		fail(err)
	}
	rs, err := New(Deps{DB: db, Bus: b, ServerName: testServer, Keys: ring})
	if err != nil {
		fail(err)
	}
	alice := user("alice")
	var out sync.Mutex
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for g := range crashSenders {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				txn := fmt.Sprintf("g%d-%d", g, n)
				outs, err := rs.Send(ctx, roomID, EventRequest{Type: "m.room.message", Sender: alice,
					Content: []byte(`{"msgtype":"m.text","body":"` + txn + `"}`),
					Txn:     &TxnKey{UserID: alice, DeviceID: "DEV", TxnID: txn, Endpoint: TxnSend}})
				if err != nil {
					fail(err)
				}
				out.Lock()
				os.Stdout.WriteString("ack " + txn + " " + outs[0].Event.EventID() + "\n")
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestKillDuringSends: kill -9 under a send load, then restart. Every
// acknowledged event is there; a send retried with the same transaction ID
// returns the original event (and an unacknowledged one is stored at most
// once); /messages pagination returns every event once; and the output
// stream ends up with every event, republished if need be.
func TestKillDuringSends(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		alice := user("alice")
		roomID, _ := e.createRoom("11", alice)
		e.close()

		acked, lastTried := runAndKill(t, e.dir+"|"+dsn+"|"+roomID, 300)

		e.open()
		ctx := ctxT(t)
		for txn, id := range acked {
			got, err := e.rs.Event(ctx, id)
			if err != nil || got.StreamPos == 0 {
				t.Fatalf("acknowledged event %s (%s) after the crash: %+v, %v", id, txn, got, err)
			}
		}
		// Retry every transaction the child tried, acknowledged or not.
		tried := 0
		for g := range crashSenders {
			for n := 0; n <= lastTried[g]; n++ {
				txn := fmt.Sprintf("g%d-%d", g, n)
				outs, err := e.rs.Send(ctx, roomID, EventRequest{Type: "m.room.message", Sender: alice,
					Content: []byte(`{"msgtype":"m.text","body":"retry"}`),
					Txn:     &TxnKey{UserID: alice, DeviceID: "DEV", TxnID: txn, Endpoint: TxnSend}})
				if err != nil {
					t.Fatal(err)
				}
				if id, ok := acked[txn]; ok && outs[0].Event.EventID() != id {
					t.Fatalf("retry of %s made %s, the original is %s", txn, outs[0].Event.EventID(), id)
				}
				tried++
			}
		}
		// One message per transaction, and pagination sees each once.
		seen := map[string]bool{}
		messages := 0
		from := storage.TopoMax
		for {
			page, err := e.db.RoomMessages(ctx, roomID, from, 50, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				if seen[r.EventID] {
					t.Fatalf("pagination returned %s twice", r.EventID)
				}
				seen[r.EventID] = true
				if r.Type == "m.room.message" {
					messages++
				}
			}
			from = page[len(page)-1].Pos()
		}
		if messages != tried {
			t.Errorf("%d messages stored for %d transactions", messages, tried)
		}
		all, err := e.db.EventsInRange(ctx, roomID, 0, 1<<62, 0, false)
		if err != nil || len(all) != len(seen) {
			t.Errorf("pagination saw %d events, the room has %d (%v)", len(seen), len(all), err)
		}
		// The output stream has every event (republished after the crash
		// if it was not published before).
		msgs := e.waitForStream(len(all))
		onStream := map[string]bool{}
		for _, m := range msgs {
			onStream[m.EventID] = true
		}
		for _, r := range all {
			if !onStream[r.EventID] {
				t.Errorf("event %s at %d never reached the output stream", r.EventID, r.StreamPos)
				break
			}
		}
		t.Logf("%d acknowledged before the kill, %d transactions retried, %d events in the room", len(acked), tried, len(all))
	})
}

// runAndKill starts the child, SIGKILLs it once it has acknowledged
// killAfter sends, and returns the acknowledged transactions (→ event ID)
// and, per sender, the highest transaction number it may have tried.
func runAndKill(t *testing.T, arg string, killAfter int) (map[string]string, [crashSenders]int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+arg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	acked := map[string]string{}
	var last [crashSenders]int
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var g, n int
		var id string
		if _, err := fmt.Sscanf(sc.Text(), "ack g%d-%d %s", &g, &n, &id); err != nil || g < 0 || g >= crashSenders {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[fmt.Sprintf("g%d-%d", g, n)] = id
		// The sender may have started the next one before the kill.
		last[g] = max(last[g], n+1)
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed, after %d sends: %v\n%s", len(acked), err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	return acked, last
}
