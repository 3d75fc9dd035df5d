package e2ee

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/storage"
)

// Config is what a Service is built from.
type Config struct {
	DB         *storage.DB
	ServerName string
	// Bus carries the /sync wake-ups; nil: none are sent (a federation-only
	// use, which changes nothing /sync shows).
	Bus *bus.Bus
	// Federation asks other servers for their users' keys; nil: remote
	// users are reported as failures.
	Federation *fedclient.Client
	// EDUs is the federation sender (internal/server passes it in): this
	// service stores its durable EDUs itself, in the transactions that
	// make them, and then wakes the sender. nil: the EDUs wait until the
	// sender next looks at those destinations.
	EDUs   EDUSender
	Logger *slog.Logger
}

// EDUSender is the federation sender as this service needs it
// (federation/sender's Sender or Queue).
type EDUSender interface {
	// SendQueuedEDUs wakes the sender for destinations, whose durable
	// EDUs the caller stored with storage.Tx.EnqueueEDU.
	SendQueuedEDUs(ctx context.Context, destinations []string) error
}

// Service is the end-to-end encryption component.
type Service struct {
	db         *storage.DB
	serverName string
	bus        *bus.Bus
	fed        *fedclient.Client
	edus       EDUSender
	logger     *slog.Logger

	// Background work (Start, Close): local device list changes turned
	// into EDUs, remote device lists fetched again.
	devicesOut chan struct{}
	resyncs    *resyncer
	members    *bus.Consumer
	stop       chan struct{}
	// bgCtx ends at Close: the background's requests to other servers.
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
}

// New builds the service.
func New(c Config) (*Service, error) {
	if c.DB == nil || c.ServerName == "" {
		return nil, errors.New("e2ee: DB and ServerName are required")
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{db: c.DB, serverName: c.ServerName, bus: c.Bus, fed: c.Federation, edus: c.EDUs,
		logger: logger.With("component", "e2ee"), devicesOut: make(chan struct{}, 1), stop: make(chan struct{})}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.resyncs = newResyncer(s)
	return s, nil
}

// Start starts the background work: sending local users' device list
// changes to other servers (those left from before included), fetching
// again the stale device lists of remote users, and following leaves in
// the roomserver's output (membership.go).
func (s *Service) Start(ctx context.Context) error {
	var err error
	s.startOnce.Do(func() {
		if err = s.startMembershipConsumer(ctx); err != nil {
			return
		}
		s.wg.Add(2)
		go s.runDeviceListsOut()
		go s.resyncs.runRetries()
	})
	return err
}

// Close stops the background work and waits for it. What is left is
// picked up at the next Start.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		if s.members != nil {
			s.members.Stop()
		}
		s.resyncs.close()
		close(s.stop)
		s.bgCancel()
		s.wg.Wait()
	})
}

// sendQueuedEDUs wakes the federation sender for destinations after a
// commit that queued EDUs for them.
func (s *Service) sendQueuedEDUs(ctx context.Context, destinations []string) {
	if s.edus == nil || len(destinations) == 0 {
		return
	}
	if err := s.edus.SendQueuedEDUs(context.WithoutCancel(ctx), destinations); err != nil {
		// Stored: the sender finds them at its next wake-up or start.
		s.logger.Warn("cannot wake the federation sender", "err", err)
	}
}

// isLocal reports whether userID is a user of this server, and its
// localpart.
func (s *Service) isLocal(userID string) (string, bool) {
	lp, server, ok := splitUserID(userID)
	return lp, ok && server == s.serverName
}

// notifyUsers wakes the syncs of userIDs for a change at pos.
func (s *Service) notifyUsers(ctx context.Context, pos int64, userIDs []string) {
	if s.bus == nil || pos == 0 || len(userIDs) == 0 {
		return
	}
	// Bounded messages: a to-device fan-out can name thousands of users.
	const perMessage = 500
	for len(userIDs) > 0 {
		n := min(perMessage, len(userIDs))
		s.publish(ctx, bus.SyncNotification{Pos: pos, UserIDs: userIDs[:n]})
		userIDs = userIDs[n:]
	}
}

// notifyDeviceListChange wakes the syncs of userID and of everyone in its
// joined rooms: their device_lists.changed now names userID.
func (s *Service) notifyDeviceListChange(ctx context.Context, userID string, pos int64) {
	if pos == 0 {
		return
	}
	if _, local := s.isLocal(userID); local {
		signal(s.devicesOut) // other servers hear of it too
	}
	if s.bus == nil {
		return
	}
	// After the commit: the request's context may end, the wake-ups should
	// still go out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rooms, err := s.db.RoomsForUser(ctx, userID, "join")
	if err != nil {
		s.logger.Warn("device list change: cannot list the rooms to wake", "user", userID, "err", err)
	}
	for _, roomID := range rooms {
		s.publish(ctx, bus.SyncNotification{Pos: pos, RoomID: roomID})
	}
	s.publish(ctx, bus.SyncNotification{Pos: pos, UserIDs: []string{userID}})
}

func (s *Service) publish(ctx context.Context, n bus.SyncNotification) {
	// Kind stays "" ("anything"): the sync notifier needs no finer kind for
	// keys and to-device messages.
	if err := bus.NotifySync(ctx, s.bus, n); err != nil {
		s.logger.Warn("cannot publish a sync notification", "err", err)
	}
}

// DeviceListChanged records a change of userID's device list made outside
// this package (a device deleted with its keys, by storage.ForgetDevices
// at position pos) and wakes the syncs that must hear of it.
func (s *Service) DeviceListChanged(ctx context.Context, userID string, pos int64) {
	s.notifyDeviceListChange(ctx, userID, pos)
}

// signal wakes whoever waits on c, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
