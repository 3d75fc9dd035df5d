package sender

// Outbound EDUs (server-server-api "EDUs"). Anything may queue an EDU for
// a set of destinations: Sender.QueueEDU in the sender's process, Queue
// from any process. Durable EDUs go to federation_edu_queue, in the same
// database every process shares; the others are held in the memory of the
// sender's process (they reach it over the bus, eduSubject), for a
// destination not backing off. Either way the destination's worker is
// woken and sends them at once, in the next transaction, beside any PDUs
// waiting for it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

const (
	// MaxEDUsPerTransaction is the spec's limit on EDUs in one transaction.
	MaxEDUsPerTransaction = 100
	// maxPendingEDUs bounds the EDUs held in memory for one destination;
	// beyond it the oldest are dropped.
	maxPendingEDUs = 1000
	// eduSubject (core NATS, namespaced) carries eduMessages from Queue to
	// the sender's process.
	eduSubject = "federation.edu"
)

// eduMessage is what Queue publishes on eduSubject: an EDU to hold in
// memory for the destinations, or, with EDU nil, a wake-up for durable
// EDUs already stored for them.
type eduMessage struct {
	Destinations []string `json:"destinations"`
	EDU          *bus.EDU `json:"edu,omitempty"`
}

// QueueEDU queues edu for each of destinations (this server among them is
// skipped) and wakes their workers. A durable EDU is stored before QueueEDU
// returns; another is held in memory, and dropped for a destination that is
// backing off.
func (s *Sender) QueueEDU(ctx context.Context, destinations []string, edu bus.EDU) error {
	if err := checkEDU(edu); err != nil {
		return err
	}
	dests := s.others(destinations)
	if len(dests) == 0 {
		return nil
	}
	if edu.Durable {
		if err := s.cfg.DB.EnqueueEDU(ctx, dests, edu.Type, edu.Key, edu.Content); err != nil {
			return fmt.Errorf("federation sender: %w", err)
		}
		for _, d := range dests {
			s.kick(d, false)
		}
		return nil
	}
	s.holdEDU(dests, edu)
	return nil
}

// SendQueuedEDUs wakes the workers of destinations, which have durable
// EDUs that the caller stored itself, with storage.Tx.EnqueueEDU in a
// transaction of its own (so that the EDUs are queued exactly when what
// they carry is committed: a to-device message, a device list update).
func (s *Sender) SendQueuedEDUs(_ context.Context, destinations []string) error {
	for _, d := range s.others(destinations) {
		s.kick(d, false)
	}
	return nil
}

// holdEDU adds an EDU to the in-memory queues of dests, replacing one of
// the same type and key, and wakes their workers.
func (s *Sender) holdEDU(dests []string, edu bus.EDU) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range dests {
		if s.down[d] || s.stopped {
			continue
		}
		w := s.workers[d]
		if w == nil {
			w = s.startWorkerLocked(d, false)
		}
		w.hold(edu)
		w.dirty = true
		signal(w.wake)
	}
}

// hold adds edu to the worker's in-memory EDUs (under Sender.mu).
func (w *worker) hold(edu bus.EDU) {
	if edu.Key != "" {
		for i := range w.edus {
			if w.edus[i].Type == edu.Type && w.edus[i].Key == edu.Key {
				// The newer state goes out where the older one waited.
				w.edus[i] = edu
				return
			}
		}
	}
	if len(w.edus) == maxPendingEDUs {
		w.edus = append(w.edus[:0], w.edus[1:]...)
	}
	w.edus = append(w.edus, edu)
}

// takeEDUs removes and returns up to n of the worker's in-memory EDUs,
// oldest first (under Sender.mu).
func (w *worker) takeEDUs(n int) []bus.EDU {
	n = min(n, len(w.edus))
	if n == 0 {
		return nil
	}
	out := append([]bus.EDU(nil), w.edus[:n]...)
	w.edus = append(w.edus[:0], w.edus[n:]...)
	return out
}

// others returns destinations without this server, empty names and
// repeats.
func (s *Sender) others(destinations []string) []string {
	seen := map[string]bool{s.cfg.ServerName: true, "": true}
	var out []string
	for _, d := range destinations {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func checkEDU(edu bus.EDU) error {
	if edu.Type == "" {
		return errors.New("federation sender: an EDU needs a type")
	}
	if strings.ContainsRune(edu.Key, 0) {
		// PostgreSQL's TEXT cannot hold it.
		return fmt.Errorf("federation sender: the key of a %s EDU holds a NUL", edu.Type)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(edu.Content, &obj); err != nil || obj == nil {
		return fmt.Errorf("federation sender: the content of a %s EDU is not a JSON object", edu.Type)
	}
	return nil
}

// onEDUMessage takes an eduMessage from another process's Queue.
func (s *Sender) onEDUMessage(m *nats.Msg) {
	var msg eduMessage
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		s.log.Warn("malformed EDU message", "err", err)
		return
	}
	dests := s.others(msg.Destinations)
	if msg.EDU == nil {
		for _, d := range dests {
			s.kick(d, false)
		}
		return
	}
	if err := checkEDU(*msg.EDU); err != nil {
		s.log.Warn("malformed EDU message", "err", err)
		return
	}
	s.holdEDU(dests, *msg.EDU)
}

// Queue queues EDUs for the federation sender from any process: durable
// ones in the database, the others over the bus to the sender's memory.
// Its QueueEDU behaves as Sender.QueueEDU, except that an EDU that is not
// durable is lost when no sender runs. Components that must not import
// federation take it as an interface of their own:
//
//	interface{ QueueEDU(context.Context, []string, bus.EDU) error }
type Queue struct {
	db         *storage.DB
	bus        *bus.Bus
	serverName string
}

// NewQueue returns a Queue for the server serverName.
func NewQueue(db *storage.DB, b *bus.Bus, serverName string) *Queue {
	return &Queue{db: db, bus: b, serverName: serverName}
}

// QueueEDU queues edu for each of destinations (this server among them is
// skipped) and wakes the sender.
func (q *Queue) QueueEDU(ctx context.Context, destinations []string, edu bus.EDU) error {
	if err := checkEDU(edu); err != nil {
		return err
	}
	var dests []string
	for _, d := range destinations {
		if d != q.serverName && d != "" {
			dests = append(dests, d)
		}
	}
	if len(dests) == 0 {
		return nil
	}
	msg := eduMessage{Destinations: dests}
	if edu.Durable {
		if err := q.db.EnqueueEDU(ctx, dests, edu.Type, edu.Key, edu.Content); err != nil {
			return fmt.Errorf("federation queue: %w", err)
		}
	} else {
		msg.EDU = &edu
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("federation queue: %w", err)
	}
	if err := q.bus.Conn().Publish(q.bus.Subject(eduSubject), data); err != nil {
		// A durable EDU is stored: the sender finds it at its next wake-up
		// for that destination or its next start.
		return fmt.Errorf("federation queue: %w", err)
	}
	return nil
}

// SendQueuedEDUs tells the sender that destinations have durable EDUs
// the caller stored itself (see Sender.SendQueuedEDUs). Were the wake-up
// lost, the sender would still find them at its next start or wake-up for
// those destinations.
func (q *Queue) SendQueuedEDUs(_ context.Context, destinations []string) error {
	var dests []string
	for _, d := range destinations {
		if d != q.serverName && d != "" {
			dests = append(dests, d)
		}
	}
	if len(dests) == 0 {
		return nil
	}
	data, err := json.Marshal(eduMessage{Destinations: dests})
	if err != nil {
		return fmt.Errorf("federation queue: %w", err)
	}
	if err := q.bus.Conn().Publish(q.bus.Subject(eduSubject), data); err != nil {
		return fmt.Errorf("federation queue: %w", err)
	}
	return nil
}

// RoomDestinations returns the servers, other than this one, with a user
// joined to roomID: where an EDU about the room goes (typing, receipts).
// An unknown room has none.
func (s *Sender) RoomDestinations(ctx context.Context, roomID string) ([]string, error) {
	members, err := s.cfg.Roomserver.JoinedMembers(ctx, roomID)
	if errors.Is(err, roomserver.ErrRoomNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.serversOf(members), nil
}

// UserDestinations returns the servers, other than this one, with a user
// joined to a room userID is joined to: where an EDU about the user goes
// (presence, device list and signing key updates).
func (s *Sender) UserDestinations(ctx context.Context, userID string) ([]string, error) {
	users, err := s.cfg.DB.UsersSharingRoomWith(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.serversOf(users), nil
}

func (s *Sender) serversOf(users []string) []string {
	servers := make([]string, 0, len(users))
	for _, u := range users {
		servers = append(servers, roomserver.UserServer(u))
	}
	return s.others(servers)
}
