package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// target is a NATS to test against: the embedded one always, the external
// one at MYELIN_TEST_NATS when set.
type target struct {
	name string
	// open opens a bus; calling it again reopens the same store/namespace.
	open func(t *testing.T) *Bus
}

func targets(t *testing.T) []target {
	dir := t.TempDir()
	ts := []target{{name: "embedded", open: func(t *testing.T) *Bus {
		return mustOpen(t, Config{DataDir: dir, Namespace: "test", Logger: testLogger(t)})
	}}}
	if url := os.Getenv("MYELIN_TEST_NATS"); url != "" {
		// A namespace of its own, so runs never see each other's streams.
		var b [6]byte
		_, _ = rand.Read(b[:])
		ns := "test_" + hex.EncodeToString(b[:])
		ts = append(ts, target{name: "external", open: func(t *testing.T) *Bus {
			bus := mustOpen(t, Config{URL: url, Namespace: ns, Logger: testLogger(t)})
			t.Cleanup(func() { deleteStreams(t, url, ns) })
			return bus
		}})
	}
	return ts
}

func mustOpen(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// deleteStreams removes a test namespace's streams from the external NATS.
func deleteStreams(t *testing.T, url, ns string) {
	b, err := Open(context.Background(), Config{URL: url, Namespace: ns})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer b.Close()
	ctx := context.Background()
	names := b.js.StreamNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, ns+"_") {
			_ = b.js.DeleteStream(ctx, name)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ensure(t *testing.T, b *Bus, stream string, subjects ...string) {
	t.Helper()
	if err := b.EnsureStream(context.Background(), jetstream.StreamConfig{Name: stream, Subjects: subjects}); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, b *Bus, subject string, data ...string) {
	t.Helper()
	for _, d := range data {
		if _, err := b.Publish(context.Background(), subject, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder is a handler that records deliveries and can be told to fail.
type recorder struct {
	mu   sync.Mutex
	got  []*Message
	fail func(m *Message) error
	ch   chan *Message
}

func newRecorder(fail func(m *Message) error) *recorder {
	return &recorder{fail: fail, ch: make(chan *Message, 100)}
}

func (r *recorder) handle(_ context.Context, m *Message) error {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
	var err error
	if r.fail != nil {
		err = r.fail(m)
	}
	r.ch <- m
	return err
}

// next waits for the next delivery.
func (r *recorder) next(t *testing.T) *Message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message delivered within 15s")
		return nil
	}
}

// none checks that nothing is delivered for a while.
func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-r.ch:
		t.Fatalf("unexpected delivery: seq %d %q (delivery %d)", m.Sequence, m.Data, m.NumDelivered)
	case <-time.After(d):
	}
}

func consume(t *testing.T, b *Bus, cfg ConsumerConfig, r *recorder) *Consumer {
	t.Helper()
	c, err := b.Consume(context.Background(), cfg, r.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func consumerInfo(t *testing.T, b *Bus, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := context.Background()
	c, err := b.js.Consumer(ctx, b.StreamName(stream), durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestPublishConsumeAck(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "one", "two", "three")

			r := newRecorder(nil)
			c := consume(t, b, ConsumerConfig{Stream: "events", Durable: "reader"}, r)
			for i, want := range []string{"one", "two", "three"} {
				m := r.next(t)
				if string(m.Data) != want || m.Sequence != uint64(i+1) || m.NumDelivered != 1 || m.Subject != "events.a" {
					t.Fatalf("delivery %d: got %q seq %d delivery %d subject %q; want %q seq %d delivery 1 subject events.a",
						i, m.Data, m.Sequence, m.NumDelivered, m.Subject, want, i+1)
				}
			}
			c.Stop()
			info := consumerInfo(t, b, "events", "reader")
			if info.AckFloor.Stream != 3 || info.NumAckPending != 0 {
				t.Fatalf("after three acks: ack floor %d, %d pending; want 3, 0", info.AckFloor.Stream, info.NumAckPending)
			}
		})
	}
}

func TestFilterSubjects(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "a1")
			publish(t, b, "events.b", "b1")
			publish(t, b, "events.a", "a2")

			r := newRecorder(nil)
			consume(t, b, ConsumerConfig{Stream: "events", Durable: "only-a", FilterSubjects: []string{"events.a"}}, r)
			for _, want := range []string{"a1", "a2"} {
				if m := r.next(t); string(m.Data) != want {
					t.Fatalf("got %q, want %q", m.Data, want)
				}
			}
			r.none(t, 200*time.Millisecond)
		})
	}
}

func TestRedeliveryAfterHandlerError(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "flaky", "after")

			r := newRecorder(func(m *Message) error {
				if string(m.Data) == "flaky" && m.NumDelivered == 1 {
					return errors.New("temporary failure")
				}
				return nil
			})
			consume(t, b, ConsumerConfig{Stream: "events", Durable: "reader", Backoff: 20 * time.Millisecond}, r)
			// In order: the failed message comes back before the next one.
			want := []struct {
				data      string
				delivered uint64
			}{{"flaky", 1}, {"flaky", 2}, {"after", 1}}
			for _, w := range want {
				m := r.next(t)
				if string(m.Data) != w.data || m.NumDelivered != w.delivered {
					t.Fatalf("got %q delivery %d, want %q delivery %d", m.Data, m.NumDelivered, w.data, w.delivered)
				}
			}
		})
	}
}

func TestMaxDeliverThenTerm(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "poison", "good")

			r := newRecorder(func(m *Message) error {
				if string(m.Data) == "poison" {
					return errors.New("always fails")
				}
				return nil
			})
			consume(t, b, ConsumerConfig{Stream: "events", Durable: "reader", MaxDeliver: 3, Backoff: 10 * time.Millisecond}, r)
			for i := 1; i <= 3; i++ {
				if m := r.next(t); string(m.Data) != "poison" || m.NumDelivered != uint64(i) {
					t.Fatalf("got %q delivery %d, want poison delivery %d", m.Data, m.NumDelivered, i)
				}
			}
			// Terminated after the third failure, so the stream moves on.
			if m := r.next(t); string(m.Data) != "good" {
				t.Fatalf("got %q delivery %d, want good", m.Data, m.NumDelivered)
			}
			r.none(t, 200*time.Millisecond)
		})
	}
}

func TestPermanentErrorTerminatesAtOnce(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "malformed", "good")

			r := newRecorder(func(m *Message) error {
				if string(m.Data) == "malformed" {
					return Permanent(errors.New("cannot parse"))
				}
				return nil
			})
			consume(t, b, ConsumerConfig{Stream: "events", Durable: "reader", Backoff: 10 * time.Millisecond}, r)
			if m := r.next(t); string(m.Data) != "malformed" {
				t.Fatalf("got %q, want malformed", m.Data)
			}
			if m := r.next(t); string(m.Data) != "good" {
				t.Fatalf("got %q delivery %d, want good (malformed must not come back)", m.Data, m.NumDelivered)
			}
		})
	}
}

func TestHandlerPanicIsRetried(t *testing.T) {
	b := targets(t)[0].open(t)
	ensure(t, b, "events", "events.>")
	publish(t, b, "events.a", "boom")
	r := newRecorder(nil)
	var once sync.Once
	h := func(ctx context.Context, m *Message) error {
		once.Do(func() { panic("handler bug") })
		return r.handle(ctx, m)
	}
	c, err := b.Consume(context.Background(), ConsumerConfig{Stream: "events", Durable: "reader", Backoff: 10 * time.Millisecond}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if m := r.next(t); string(m.Data) != "boom" || m.NumDelivered != 2 {
		t.Fatalf("got %q delivery %d, want boom delivery 2", m.Data, m.NumDelivered)
	}
}

func TestStopWaitsForHandlerInFlight(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "slow")

			started, release := make(chan struct{}), make(chan struct{})
			var finished bool
			c, err := b.Consume(context.Background(), ConsumerConfig{Stream: "events", Durable: "reader"},
				func(ctx context.Context, m *Message) error {
					close(started)
					<-release
					finished = true
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			<-started
			stopped := make(chan struct{})
			go func() { c.Stop(); close(stopped) }()
			select {
			case <-stopped:
				t.Fatal("Stop returned while the handler was still running")
			case <-time.After(100 * time.Millisecond):
			}
			close(release)
			<-stopped
			if !finished {
				t.Fatal("Stop returned before the handler finished")
			}
			// The handler's success was acknowledged before Stop returned.
			if info := consumerInfo(t, b, "events", "reader"); info.AckFloor.Stream != 1 {
				t.Fatalf("ack floor %d after Stop, want 1", info.AckFloor.Stream)
			}
		})
	}
}

// TestRestartResumes closes the bus and opens it again: for the embedded
// server that restarts nats-server on the same data directory, so the
// stream must have been persisted; in both cases the durable consumer must
// resume after its last acknowledged message.
func TestRestartResumes(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			publish(t, b, "events.a", "one", "two")
			r := newRecorder(nil)
			c := consume(t, b, ConsumerConfig{Stream: "events", Durable: "reader"}, r)
			r.next(t)
			r.next(t)
			c.Stop()
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			b = tg.open(t)
			info, err := b.js.Stream(context.Background(), b.StreamName("events"))
			if err != nil {
				t.Fatalf("stream gone after restart: %v", err)
			}
			if n := info.CachedInfo().State.Msgs; n != 2 {
				t.Fatalf("stream has %d messages after restart, want 2", n)
			}
			ensure(t, b, "events", "events.>") // idempotent
			publish(t, b, "events.a", "three", "four")
			r = newRecorder(nil)
			consume(t, b, ConsumerConfig{Stream: "events", Durable: "reader"}, r)
			for i, want := range []string{"three", "four"} {
				m := r.next(t)
				if string(m.Data) != want || m.Sequence != uint64(i+3) || m.NumDelivered != 1 {
					t.Fatalf("got %q seq %d delivery %d, want %q seq %d delivery 1", m.Data, m.Sequence, m.NumDelivered, want, i+3)
				}
			}
			r.none(t, 200*time.Millisecond)
		})
	}
}

func TestNamespacesDoNotMix(t *testing.T) {
	// Two namespaces on one NATS: the external one when available, else two
	// buses on embedded servers can't share, so use one bus's connection
	// with two namespaced views.
	url := os.Getenv("MYELIN_TEST_NATS")
	var a, b *Bus
	if url != "" {
		var r [6]byte
		_, _ = rand.Read(r[:])
		nsA, nsB := "testa_"+hex.EncodeToString(r[:]), "testb_"+hex.EncodeToString(r[:])
		a = mustOpen(t, Config{URL: url, Namespace: nsA})
		b = mustOpen(t, Config{URL: url, Namespace: nsB})
		t.Cleanup(func() { deleteStreams(t, url, nsA); deleteStreams(t, url, nsB) })
	} else {
		a = mustOpen(t, Config{DataDir: t.TempDir(), Namespace: "a"})
		b = &Bus{namespace: "b", logger: a.logger, nc: a.nc, js: a.js, closed: a.closed, consumers: map[*Consumer]struct{}{}}
	}
	ensure(t, a, "events", "events.>")
	ensure(t, b, "events", "events.>")
	publish(t, a, "events.x", "for a")
	publish(t, b, "events.x", "for b")
	ra, rb := newRecorder(nil), newRecorder(nil)
	consume(t, a, ConsumerConfig{Stream: "events", Durable: "r"}, ra)
	consume(t, b, ConsumerConfig{Stream: "events", Durable: "r"}, rb)
	if m := ra.next(t); string(m.Data) != "for a" {
		t.Fatalf("namespace a got %q", m.Data)
	}
	if m := rb.next(t); string(m.Data) != "for b" {
		t.Fatalf("namespace b got %q", m.Data)
	}
	ra.none(t, 100*time.Millisecond)
	rb.none(t, 100*time.Millisecond)
}

func TestNamespaceFor(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example", "example"},
		{"my-server", "my-server"},
	}
	for _, tc := range tests {
		if got := NamespaceFor(tc.in); got != tc.want {
			t.Errorf("NamespaceFor(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{"example.org", "example-org", "example.org:8448", "127.0.0.1:8448", "127.0.0.1:8449", "[::1]:8448", ""} {
		ns := NamespaceFor(name)
		if err := checkNamespace(ns); err != nil {
			t.Errorf("NamespaceFor(%q) = %q: %v", name, ns, err)
		}
		if other, dup := seen[ns]; dup {
			t.Errorf("NamespaceFor(%q) = NamespaceFor(%q) = %q", name, other, ns)
		}
		seen[ns] = name
	}
	if got := NamespaceFor("127.0.0.1:8448"); !strings.HasPrefix(got, "127_0_0_1_8448_") {
		t.Errorf("NamespaceFor(127.0.0.1:8448) = %q, want a readable prefix 127_0_0_1_8448_", got)
	}
}

func TestOpenErrorsNameTheSetting(t *testing.T) {
	_, err := Open(context.Background(), Config{URL: "nats://user:s3cret@127.0.0.1:1", Namespace: "x"})
	if err == nil {
		t.Fatal("connected to a port nothing listens on")
	}
	msg := err.Error()
	for _, want := range []string{`nats "nats://user:xxxxx@127.0.0.1:1": cannot connect:`, "(check --nats)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q leaks the password", msg)
	}

	_, err = Open(context.Background(), Config{Namespace: "x"})
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("embedded without a data dir: error %v, want one naming --data-dir", err)
	}

	// A data directory that cannot hold the store: a file where the
	// directory should be.
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/nats", []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{DataDir: dir, Namespace: "x", Logger: testLogger(t)})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "embedded NATS in") || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("embedded on a file: error %v, want one naming the store and --data-dir", err)
	}

	for _, ns := range []string{"", "a.b", "a b", "a>"} {
		if _, err := Open(context.Background(), Config{DataDir: t.TempDir(), Namespace: ns}); err == nil {
			t.Errorf("namespace %q accepted", ns)
		}
	}
}

func TestBackoffDoublesUpToMax(t *testing.T) {
	c := ConsumerConfig{Backoff: time.Second, MaxBackoff: 5 * time.Second}
	c.setDefaults()
	var got []string
	for n := uint64(1); n <= 5; n++ {
		got = append(got, c.backoff(n).String())
	}
	if want := "[1s 2s 4s 5s 5s]"; fmt.Sprint(got) != want {
		t.Fatalf("backoffs %v, want %s", got, want)
	}
}
