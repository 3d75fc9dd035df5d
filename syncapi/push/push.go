package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// Defaults of Config.
const (
	DefaultMinBackoff = 2 * time.Second
	DefaultMaxBackoff = 30 * time.Minute
	// DefaultGiveUpAfter: a push not delivered after a day is dropped; a
	// notification that late helps no one.
	DefaultGiveUpAfter = 24 * time.Hour
	// DefaultRequestTimeout bounds one request to a push gateway.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxConcurrent bounds the requests in flight at once.
	DefaultMaxConcurrent = 16
	// durableName is the bus consumer's name, which keeps its position.
	durableName = "push"
)

// ProgressSubject is the core NATS subject (without the namespace) on
// which the notifier announces, after each room event, that every event up
// to that stream position has been evaluated. /sync waits on it.
const ProgressSubject = "push.progress"

// Progress is the message of ProgressSubject.
type Progress struct {
	Pos int64 `json:"pos"`
}

// Config is what a Service is built from.
type Config struct {
	DB         *storage.DB
	Bus        *bus.Bus
	ServerName string
	Logger     *slog.Logger
	// HTTPClient sends to push gateways (NewGatewayClient); nil means one
	// that refuses no address.
	HTTPClient *http.Client
	// Zero values take the defaults above.
	MinBackoff     time.Duration
	MaxBackoff     time.Duration
	GiveUpAfter    time.Duration
	RequestTimeout time.Duration
	MaxConcurrent  int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the notifier and the pushers' delivery. Start it once; Stop
// it before the bus closes.
type Service struct {
	cfg      Config
	log      *slog.Logger
	compiler *pushrules.Compiler
	users    *userCache
	rooms    *roomCache
	sem      chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	started  bool
	stopped  bool
	consumer *bus.Consumer
	subs     []*nats.Subscription
	workers  map[int64]*worker
	// sweepPending: a sweep of the queue is scheduled (debounced).
	sweepPending bool

	// Progress not yet stored (events that notified no one), under
	// progressMu.
	progressMu     sync.Mutex
	progress       int64
	progressStored int64
}

// worker is one pusher's running worker, under Service.mu.
type worker struct {
	wake  chan struct{}
	dirty bool
}

// New checks cfg and builds a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Bus == nil || cfg.ServerName == "" {
		return nil, errors.New("push: DB, Bus and ServerName are required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = DefaultGiveUpAfter
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
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
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewGatewayClient(nil, false)
	}
	s := &Service{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "push"),
		compiler: pushrules.NewCompiler(),
		sem:      make(chan struct{}, cfg.MaxConcurrent),
		stop:     make(chan struct{}),
		workers:  map[int64]*worker{},
	}
	s.users = newUserCache(s)
	s.rooms = newRoomCache(s)
	return s, nil
}

// Start subscribes to rule changes and receipts, resumes the queued
// pushes and starts consuming the roomserver's output stream.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("push: started twice")
	}
	s.started = true
	s.mu.Unlock()

	pos, err := s.cfg.DB.PushProgress(ctx)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	s.progress, s.progressStored = pos, pos

	nc := s.cfg.Bus.Conn()
	sub, err := nc.Subscribe(s.cfg.Bus.Subject(bus.SyncNotifySubject), s.onSyncNotify)
	if err != nil {
		return fmt.Errorf("push: subscribe to %s: %w", bus.SyncNotifySubject, err)
	}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	if err := nc.Flush(); err != nil {
		s.Stop()
		return fmt.Errorf("push: subscribe: %w", err)
	}
	if err := s.sweep(ctx); err != nil {
		s.Stop()
		return fmt.Errorf("push: %w", err)
	}
	// A handler failure (the database away) is retried for a long time:
	// a message given up on is notifications no one gets.
	c, err := s.cfg.Bus.ConsumeBatches(context.Background(), bus.ConsumerConfig{
		Stream:         roomserver.OutputStream,
		Durable:        durableName,
		FilterSubjects: []string{roomserver.OutputSubject},
		MaxDeliver:     1000,
	}, outputBatch, s.handle)
	if err != nil {
		s.Stop()
		return fmt.Errorf("push: %w", err)
	}
	s.mu.Lock()
	s.consumer = c
	s.mu.Unlock()
	s.wg.Add(1)
	go s.housekeeping()
	return nil
}

// Stop stops consuming and stores the progress, then stops the workers
// after the requests in flight end. What is queued stays queued.
func (s *Service) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	c, subs := s.consumer, s.subs
	close(s.stop)
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	if c != nil {
		c.Stop()
	}
	s.saveProgress(true)
	s.wg.Wait()
}

// onSyncNotify follows the sync wake-ups of other writers: an account data
// change may be new push rules or ignored users (their compiled rules are
// dropped), and a receipt may have queued a count update (the queue is
// looked at soon).
func (s *Service) onSyncNotify(m *nats.Msg) {
	var n bus.SyncNotification
	if json.Unmarshal(m.Data, &n) != nil {
		return
	}
	switch n.Kind {
	case bus.SyncKindAccountData:
		s.users.invalidate(n.UserIDs)
	case bus.SyncKindReceipt:
		s.sweepSoon()
	}
}

// housekeeping stores the progress every second and looks at the whole
// queue every minute, which catches pushes queued by another process
// whose wake-up was lost.
func (s *Service) housekeeping() {
	defer s.wg.Done()
	save := time.NewTicker(time.Second)
	defer save.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-save.C:
			s.saveProgress(false)
		case <-sweep.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.sweep(ctx); err != nil {
				s.log.Warn("cannot read the push queue", "err", err)
			}
			cancel()
		}
	}
}

// sweepSoon sweeps the queue in half a second, once for all the receipts
// meanwhile.
func (s *Service) sweepSoon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweepPending || s.stopped {
		return
	}
	s.sweepPending = true
	time.AfterFunc(500*time.Millisecond, func() {
		s.mu.Lock()
		s.sweepPending = false
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.sweep(ctx); err != nil {
			s.log.Warn("cannot read the push queue", "err", err)
		}
	})
}

// sweep makes sure a worker runs for every pusher with queued pushes.
func (s *Service) sweep(ctx context.Context) error {
	ids, err := s.cfg.DB.PushersWithQueue(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		s.kick(id)
	}
	return nil
}

// advance records that every event up to pos has been evaluated: it tells
// the /sync processes now, and stores it within a second.
func (s *Service) advance(pos int64) {
	s.progressMu.Lock()
	s.progress = max(s.progress, pos)
	s.progressMu.Unlock()
	data, _ := json.Marshal(Progress{Pos: pos})
	if err := s.cfg.Bus.Conn().Publish(s.cfg.Bus.Subject(ProgressSubject), data); err != nil {
		s.log.Warn("cannot publish the push progress", "err", err)
	}
}

// stored records that the progress up to pos was stored (with
// notifications).
func (s *Service) stored(pos int64) {
	s.progressMu.Lock()
	s.progressStored = max(s.progressStored, pos)
	s.progressMu.Unlock()
}

// saveProgress stores the progress if it moved since it was last stored.
func (s *Service) saveProgress(final bool) {
	s.progressMu.Lock()
	pos, stored := s.progress, s.progressStored
	s.progressMu.Unlock()
	if pos <= stored {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.cfg.DB.SetPushProgress(ctx, pos); err != nil {
		if final {
			s.log.Warn("cannot store the push progress", "err", err)
		}
		return
	}
	s.progressMu.Lock()
	s.progressStored = max(s.progressStored, pos)
	s.progressMu.Unlock()
}
