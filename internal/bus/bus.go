// Package bus is Myelin's internal message bus: NATS JetStream, either run
// in-process (embedded, its store in the data directory, no TCP port) or an
// external NATS server or cluster given by URL. The same nats.go client code
// runs in both cases, so the embedded bus behaves exactly like a real
// deployment's.
//
// Stream and subject names carry a namespace (NamespaceFor derives it from
// the server name), so several servers can share one external NATS: the
// test cluster, or a distributed deployment of several homeservers.
//
// Consume runs a durable consumer with explicit acknowledgement: a message
// whose handler fails is redelivered with a growing delay, up to a bounded
// number of deliveries, and consumers resume from their last acknowledged
// position after a restart or a crash.
package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says which NATS to use.
type Config struct {
	// URL is the external NATS server URL, or several comma-separated;
	// empty runs the embedded server.
	URL string
	// DataDir holds the embedded server's JetStream store, in DataDir/nats.
	// Unused with an external URL.
	DataDir string
	// Namespace prefixes every stream and subject name; see NamespaceFor.
	Namespace string
	// Logger receives the bus's and the embedded server's log lines; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Bus is a connection to NATS JetStream, owning the embedded server when
// there is one.
type Bus struct {
	namespace string
	logger    *slog.Logger
	nc        *nats.Conn
	js        jetstream.JetStream
	embedded  *natsserver.Server // nil with an external URL
	closed    chan struct{}      // closed when nc is closed

	mu        sync.Mutex
	consumers map[*Consumer]struct{}
	closing   bool
}

// Open connects to the bus: starts the embedded server when cfg.URL is
// empty, and checks that JetStream answers. Errors name the setting to fix.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if err := checkNamespace(cfg.Namespace); err != nil {
		return nil, err
	}
	b := &Bus{
		namespace: cfg.Namespace,
		logger:    cfg.Logger,
		closed:    make(chan struct{}),
		consumers: make(map[*Consumer]struct{}),
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	b.logger = b.logger.With("component", "bus")

	opts := []nats.Option{
		nats.Name("myelin " + cfg.Namespace),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.logger.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.logger.Info("reconnected to NATS", "url", redactURL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.logger.Warn("NATS error", "subject", subject, "err", err)
		}),
	}

	// fail wraps a startup error with what was being opened and the fix.
	var fail func(what string, err error) error
	if cfg.URL == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("embedded NATS: no data directory to keep its store in (set --data-dir, or --nats for an external NATS)")
		}
		storeDir := filepath.Join(cfg.DataDir, "nats")
		ns, err := startEmbedded(storeDir, cfg.Namespace, b.logger)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS in %q: cannot start: %w (check --data-dir, or use --nats for an external NATS)", storeDir, err)
		}
		b.embedded = ns
		// The embedded server is in this process: no reconnecting to do.
		opts = append(opts, nats.InProcessServer(ns), nats.NoReconnect())
		fail = func(what string, err error) error {
			return fmt.Errorf("embedded NATS in %q: %s: %w (check --data-dir)", storeDir, what, err)
		}
	} else {
		// An external server may restart or fail over: keep reconnecting
		// forever, but report a failure to connect at startup at once.
		opts = append(opts, nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
		fail = func(what string, err error) error {
			return fmt.Errorf("nats %q: %s: %w (check --nats)", redactURL(cfg.URL), what, err)
		}
	}

	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		b.shutdownEmbedded()
		return nil, fail("cannot connect", err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.abort()
		return nil, fail("cannot use JetStream", err)
	}
	b.js = js
	if _, err := js.AccountInfo(ctx); err != nil {
		b.abort()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fail("JetStream is not enabled (run nats-server with -js)", err)
		}
		return nil, fail("JetStream does not answer", err)
	}
	return b, nil
}

// NamespaceFor derives a namespace from a server name. Stream names and
// subject tokens allow neither '.' nor ':', which server names contain, so
// other characters become '_' and, when anything was replaced, a short hash
// of the server name keeps distinct names apart ("a.b" and "a-b" differ
// after the replacement, "a.b" and "a_b" would not; server names cannot
// contain '_', so the unreplaced form never collides with a hashed one).
func NamespaceFor(serverName string) string {
	var sb strings.Builder
	replaced := false
	for _, r := range serverName {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
			replaced = true
		}
	}
	if replaced || sb.Len() == 0 {
		sum := sha256.Sum256([]byte(serverName))
		sb.WriteByte('_')
		sb.WriteString(hex.EncodeToString(sum[:4]))
	}
	return sb.String()
}

func checkNamespace(ns string) error {
	if ns == "" {
		return errors.New("bus: empty namespace (derive one from the server name with NamespaceFor)")
	}
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("bus: namespace %q contains %q (only letters, digits, '-' and '_' are allowed)", ns, r)
		}
	}
	return nil
}

// Namespace is the prefix of this bus's stream and subject names.
func (b *Bus) Namespace() string { return b.namespace }

// Subject returns the namespaced form of subject ("roomserver.output" →
// "<namespace>.roomserver.output"). Publish and Consume apply it
// themselves; use it with Conn for core NATS messages.
func (b *Bus) Subject(subject string) string { return b.namespace + "." + subject }

// StreamName returns the namespaced name of stream.
func (b *Bus) StreamName(stream string) string { return b.namespace + "_" + stream }

// Conn is the underlying connection, for core (non-persistent) NATS
// messages such as typing notifications and cache invalidations. Namespace
// subjects with Subject.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the underlying JetStream context, for what this package does
// not wrap. Namespace names with StreamName and Subject.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Embedded reports whether the bus runs the in-process server.
func (b *Bus) Embedded() bool { return b.embedded != nil }

// EnsureStream creates the stream cfg describes, or updates it to cfg. Name
// and Subjects are given without the namespace, which EnsureStream adds.
// Streams are file-backed unless cfg says otherwise.
func (b *Bus) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	if cfg.Name == "" || len(cfg.Subjects) == 0 {
		return errors.New("bus: a stream needs a name and at least one subject")
	}
	name := cfg.Name
	cfg.Name = b.StreamName(name)
	subjects := make([]string, len(cfg.Subjects))
	for i, s := range cfg.Subjects {
		subjects[i] = b.Subject(s)
	}
	cfg.Subjects = subjects
	if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("bus: stream %s: %w", name, err)
	}
	return nil
}

// Publish stores data on subject (without the namespace) in its stream and
// returns the message's stream sequence once JetStream has stored it. Pass
// jetstream.WithMsgID to have JetStream drop a duplicate of a retried publish.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (uint64, error) {
	ack, err := b.js.Publish(ctx, b.Subject(subject), data, opts...)
	if err != nil {
		return 0, fmt.Errorf("bus: publish to %s: %w", subject, err)
	}
	return ack.Sequence, nil
}

// Close stops every consumer (each finishes its handler in flight), drains
// the connection (pending publishes and acknowledgements are flushed) and
// shuts the embedded server down, which writes its store to disk.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		<-b.closed
		return nil
	}
	b.closing = true
	consumers := make([]*Consumer, 0, len(b.consumers))
	for c := range b.consumers {
		consumers = append(consumers, c)
	}
	b.mu.Unlock()

	for _, c := range consumers {
		c.Stop()
	}
	var err error
	if derr := b.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		err = fmt.Errorf("bus: drain: %w", derr)
		b.nc.Close()
	}
	<-b.closed
	b.shutdownEmbedded()
	return err
}

// abort closes a half-opened bus.
func (b *Bus) abort() {
	b.nc.Close()
	<-b.closed
	b.shutdownEmbedded()
}

func (b *Bus) shutdownEmbedded() {
	if b.embedded != nil {
		b.embedded.Shutdown()
		b.embedded.WaitForShutdown()
	}
}

// redactURL hides passwords in NATS URLs before they reach logs or errors.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
