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
)

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

	mu      sync.Mutex
	started bool
	stopped bool
	subs    []*nats.Subscription
	workers map[int64]*worker
	// sweepPending: a sweep of the queue is scheduled (debounced).
	sweepPending bool
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
	// Rules changed by this process are dropped before the change is
	// answered, so the next event the user's client sends is evaluated
	// with them (the evaluation runs in the roomserver's next commit, which
	// could beat the bus's wake-up); other processes' changes come through
	// onSyncNotify.
	cfg.DB.OnAccountDataChanged(func(c storage.AccountDataChange) {
		if c.RoomID == "" && (c.Type == "m.push_rules" || c.Type == "m.ignored_user_list") {
			s.users.invalidate([]string{c.UserID})
		}
	})
	return s, nil
}

// Start subscribes to rule changes and receipts and resumes the queued
// pushes. (The notifier itself runs in the roomserver's transactions,
// through ObserveEvents, from the roomserver's start.)
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("push: started twice")
	}
	s.started = true
	s.mu.Unlock()

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
	s.wg.Add(1)
	go s.housekeeping()
	return nil
}

// Stop stops the workers after the requests in flight end. What is queued
// stays queued.
func (s *Service) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	subs := s.subs
	close(s.stop)
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	s.wg.Wait()
}

// onSyncNotify follows the sync wake-ups of every process: an account
// data change may be new push rules or ignored users (their compiled rules
// are dropped; this process's own changes were dropped at their commit
// already), and a receipt may have queued a count update (the queue is
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

// housekeeping looks at the whole queue every minute, which catches pushes
// queued by another process whose wake-up was lost.
func (s *Service) housekeeping() {
	defer s.wg.Done()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-sweep.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.sweep(ctx); err != nil {
				s.log.Warn("cannot read the push queue", "err", err)
			}
			cancel()
		case <-prune.C:
			if err := s.pruneNotifications(); err != nil {
				s.log.Warn("cannot prune old notifications", "err", err)
			}
		}
	}
}

// notificationRetention is how long read notifications are kept for
// /notifications; unread ones are kept until read.
const notificationRetention = 30 * 24 * time.Hour

// pruneNotifications deletes the read notifications older than
// notificationRetention, a thousand a transaction so that room writes are
// not held up behind one long delete.
func (s *Service) pruneNotifications() error {
	const chunk = 1000
	before := s.cfg.Now().Add(-notificationRetention).UnixMilli()
	for {
		select {
		case <-s.stop:
			return nil
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := s.cfg.DB.PruneNotifications(ctx, before, chunk)
		cancel()
		if err != nil || n < chunk {
			return err
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
