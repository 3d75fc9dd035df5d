package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// Defaults of Config.
const (
	// MaxPDUsPerTransaction is the spec's limit on PDUs in one transaction.
	MaxPDUsPerTransaction = 50
	DefaultMinBackoff     = 5 * time.Second
	DefaultMaxBackoff     = time.Hour
	// DefaultCatchUpThreshold: a destination back from an outage with more
	// events than this waiting gets only the latest event of each room.
	DefaultCatchUpThreshold = 50
	// DefaultMaxConcurrent bounds the transactions in flight at once,
	// across destinations.
	DefaultMaxConcurrent = 32
	// durableName is the bus consumer's name, which keeps its position.
	durableName = "federation_sender"
	// outputBatch bounds the output messages queued in one transaction.
	outputBatch = 256
)

// Config is what a Sender is built from.
type Config struct {
	DB         *storage.DB
	Bus        *bus.Bus
	Roomserver *roomserver.Roomserver
	// Client sends the signed transactions.
	Client     *fedclient.Client
	ServerName string
	Logger     *slog.Logger
	// Zero values take the defaults above.
	MinBackoff       time.Duration
	MaxBackoff       time.Duration
	CatchUpThreshold int
	MaxConcurrent    int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Sender is the federation sender. Start it once; Stop it before the bus
// closes.
type Sender struct {
	cfg  Config
	log  *slog.Logger
	sem  chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	started  bool
	stopped  bool
	consumer *bus.Consumer
	subs     []*nats.Subscription
	workers  map[string]*worker
	// down holds the destinations with a backoff recorded, so that Wake
	// (called on every inbound request) costs a map lookup.
	down map[string]bool

	typing   *typingOut
	receipts *receiptsOut
	presence *presenceOut

	// instance and txnSerial make the IDs of transactions with EDUs held
	// in memory unique.
	instance  int64
	txnSerial atomic.Int64
}

// worker is the state of one destination's running worker, under
// Sender.mu.
type worker struct {
	wake chan struct{}
	// dirty: events were queued since the worker last read its queue.
	dirty bool
	// contacted: the destination contacted us since the worker last
	// looked, so its backoff is over.
	contacted bool
	// edus are the EDUs held in memory for the destination (not durable),
	// oldest first.
	edus []bus.EDU
	// lookahead is the next transaction's events being read while one is
	// in flight; only the worker's goroutine uses it.
	lookahead *lookahead
}

// New checks cfg and builds a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.DB == nil || cfg.Bus == nil || cfg.Roomserver == nil || cfg.Client == nil || cfg.ServerName == "" {
		return nil, errors.New("federation sender: DB, Bus, Roomserver, Client and ServerName are required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.CatchUpThreshold <= 0 {
		cfg.CatchUpThreshold = DefaultCatchUpThreshold
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sender{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "federation_sender"),
		sem:      make(chan struct{}, cfg.MaxConcurrent),
		stop:     make(chan struct{}),
		workers:  map[string]*worker{},
		down:     map[string]bool{},
		instance: time.Now().UnixNano(),
	}
	s.typing = newTypingOut(s)
	s.receipts = &receiptsOut{s: s, wake: make(chan struct{}, 1)}
	s.presence = newPresenceOut(s)
	return s, nil
}

// Start resumes the queues left from before (a worker for each destination
// with queued events) and starts consuming the roomserver's output stream.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("federation sender: started twice")
	}
	s.started = true
	s.mu.Unlock()

	down, err := s.cfg.DB.BackedOffDestinations(ctx)
	if err != nil {
		return fmt.Errorf("federation sender: %w", err)
	}
	s.mu.Lock()
	for _, d := range down {
		s.down[d] = true
	}
	s.mu.Unlock()
	dests, err := s.cfg.DB.QueueDestinations(ctx)
	if err != nil {
		return fmt.Errorf("federation sender: %w", err)
	}
	eduDests, err := s.cfg.DB.EDUQueueDestinations(ctx)
	if err != nil {
		return fmt.Errorf("federation sender: %w", err)
	}
	for _, d := range append(dests, eduDests...) {
		s.kick(d, false)
	}
	if err := s.startEDUFeeds(ctx); err != nil {
		s.Stop()
		return fmt.Errorf("federation sender: %w", err)
	}
	// Redeliveries are spaced out up to a minute and given many tries: a
	// message given up on is an event some server never gets. A burst of
	// events is queued in one transaction (one commit rather than one per
	// event: the commit, not the work, bounds the rate).
	c, err := s.cfg.Bus.ConsumeBatches(context.Background(), bus.ConsumerConfig{
		Stream:         roomserver.OutputStream,
		Durable:        durableName,
		FilterSubjects: []string{roomserver.OutputSubject},
		MaxDeliver:     1000,
	}, outputBatch, s.handle)
	if err != nil {
		s.Stop()
		return fmt.Errorf("federation sender: %w", err)
	}
	s.mu.Lock()
	s.consumer = c
	s.mu.Unlock()
	return nil
}

// Stop stops consuming, and stops the workers after the transactions in
// flight end (each within the client's deadline). What is queued stays
// queued for the next start.
func (s *Sender) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	c := s.consumer
	subs := s.subs
	close(s.stop)
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	if c != nil {
		c.Stop()
	}
	s.typing.stop()
	s.wg.Wait()
}

// Wake tells the sender that destination contacted us (an authenticated
// inbound request): it is up, so its backoff ends and what is queued for
// it is sent now. Cheap when the destination has no backoff.
func (s *Sender) Wake(destination string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[destination]; w != nil {
		if s.down[destination] {
			w.contacted = true
			signal(w.wake)
		}
		return
	}
	if s.down[destination] {
		// No worker: start one to clear the stored backoff (and send
		// anything queued meanwhile).
		s.startWorkerLocked(destination, true)
	}
}

// kick makes sure a worker runs for destination and looks at its queue.
func (s *Sender) kick(destination string, contacted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[destination]; w != nil {
		w.dirty = true
		w.contacted = w.contacted || contacted
		signal(w.wake)
		return
	}
	s.startWorkerLocked(destination, contacted)
}

// startWorkerLocked starts destination's worker (under s.mu) and returns
// it; once stopped, the worker returned is not run.
func (s *Sender) startWorkerLocked(destination string, contacted bool) *worker {
	w := &worker{wake: make(chan struct{}, 1), contacted: contacted}
	if s.stopped {
		return w
	}
	s.workers[destination] = w
	s.wg.Add(1)
	go s.run(destination, w)
	return w
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// handle queues the events of a batch of output messages that this
// server's users sent, each for the servers in its room, in one
// transaction, and wakes those destinations' workers. A malformed message
// is logged and skipped; any other failure retries the batch (queueing is
// idempotent).
func (s *Sender) handle(ctx context.Context, msgs []*bus.Message) error {
	// The events we originate (the others' servers send theirs), read in
	// one query for the batch.
	var ours []roomserver.OutputEvent
	for _, msg := range msgs {
		outs, err := roomserver.DecodeOutput(msg.Data)
		if err != nil {
			s.log.Error("federation sender: malformed output message; skipped", "seq", msg.Sequence, "err", err)
			continue
		}
		for _, out := range outs {
			if out.Type == "m.room.member" && out.Membership == "join" && out.StateKey != nil {
				// Users who now share a room hear of each other's presence.
				if err := s.presence.joined(ctx, &out); err != nil {
					return fmt.Errorf("federation sender: presence for the join %s: %w", out.EventID, err)
				}
			}
			if roomserver.UserServer(out.Sender) == s.cfg.ServerName {
				ours = append(ours, out)
			}
		}
	}
	if len(ours) == 0 {
		return nil
	}
	// The state at each event comes with its output; events published
	// without it are read back, in one query.
	byID := make(map[string]*storage.EventRecord, len(ours))
	var ids []string
	for _, out := range ours {
		if rec := out.Record(); rec != nil {
			byID[out.EventID] = rec
		} else {
			ids = append(ids, out.EventID)
		}
	}
	if len(ids) > 0 {
		recs, err := s.cfg.DB.EventsByID(ctx, ids)
		if err != nil {
			return fmt.Errorf("federation sender: %w", err)
		}
		for _, rec := range recs {
			byID[rec.EventID] = rec
		}
	}
	var queued []storage.QueuedPDU
	for _, out := range ours {
		rec := byID[out.EventID]
		if rec == nil {
			return fmt.Errorf("federation sender: event %s: %w", out.EventID, storage.ErrNotFound)
		}
		dests, err := s.destinations(ctx, rec)
		if err != nil {
			return fmt.Errorf("federation sender: destinations of %s: %w", out.EventID, err)
		}
		for _, d := range dests {
			queued = append(queued, storage.QueuedPDU{Destination: d, Pos: out.StreamPos, RoomID: out.RoomID, EventID: out.EventID})
		}
	}
	if err := s.cfg.DB.EnqueuePDUs(ctx, queued); err != nil {
		return fmt.Errorf("federation sender: %w", err)
	}
	woken := map[string]bool{}
	for _, q := range queued {
		if !woken[q.Destination] {
			woken[q.Destination] = true
			s.kick(q.Destination, false)
		}
	}
	return nil
}

// destinations returns the servers the event goes to: those with a user
// joined after it, and the target's server of a membership event (an
// invited, kicked or banned user's server, which may have no one joined),
// never this server.
func (s *Sender) destinations(ctx context.Context, rec *storage.EventRecord) ([]string, error) {
	if rec.Rejected || rec.SoftFailed || rec.Outlier {
		return nil, nil
	}
	servers, err := s.cfg.Roomserver.JoinedServersAfter(ctx, rec)
	if err != nil {
		return nil, err
	}
	if rec.Type == "m.room.member" && rec.StateKey != nil {
		servers = append(servers, roomserver.UserServer(*rec.StateKey))
	}
	seen := map[string]bool{s.cfg.ServerName: true, "": true}
	var dests []string
	for _, d := range servers {
		if !seen[d] {
			seen[d] = true
			dests = append(dests, d)
		}
	}
	return dests, nil
}
