package e2ee

import (
	"context"
	"errors"
	"log/slog"
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
	Logger     *slog.Logger
}

// Service is the end-to-end encryption component.
type Service struct {
	db         *storage.DB
	serverName string
	bus        *bus.Bus
	fed        *fedclient.Client
	logger     *slog.Logger
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
	return &Service{db: c.DB, serverName: c.ServerName, bus: c.Bus, fed: c.Federation,
		logger: logger.With("component", "e2ee")}, nil
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
	if s.bus == nil || pos == 0 {
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
// this package (a device deleted with its keys, by storage.DeleteDeviceKeys
// at position pos) and wakes the syncs that must hear of it.
func (s *Service) DeviceListChanged(ctx context.Context, userID string, pos int64) {
	s.notifyDeviceListChange(ctx, userID, pos)
}
