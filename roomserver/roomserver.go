package roomserver

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// Deps is what a Roomserver is built from.
type Deps struct {
	DB         *storage.DB
	Bus        *bus.Bus
	ServerName string
	Keys       *keys.Ring
	Logger     *slog.Logger
	// ServerKeys looks up other servers' signing keys for received events.
	// Nil until federation provides one: received events from other servers
	// then fail their signature check.
	ServerKeys ServerKeys
	// Observer, when set, is given every event a batch adds to the stream
	// inside the batch's transaction.
	Observer Observer
}

// Observer writes what must commit together with new room events: the
// push notifier's notifications, so that an event and its unread counts
// become visible at once (push module: "The updated notification count
// from a new event MUST appear in the same /sync response as the event
// itself"). ObserveEvents is called once per batch, inside its
// transaction, with the events that took stream positions, in stream
// order; its writes commit or roll back with them, and an error fails the
// batch. done is then called with the outcome (false: rolled back, so
// anything the observer cached from these events is void). It runs on the
// committer, which every room write of the process waits for: it must be
// quick.
type Observer interface {
	ObserveEvents(ctx context.Context, tx *storage.Tx, events []*storage.EventRecord) (done func(committed bool), err error)
}

// ServerKeys gives the public key of another server's signing key, for
// checking the signatures of received events.
type ServerKeys interface {
	// VerifyKey returns serverName's key keyID, valid at atTS
	// (milliseconds), or an error when it cannot be had. atTS 0 asks for
	// the key whatever its validity (room versions 1 to 4).
	VerifyKey(ctx context.Context, serverName, keyID string, atTS int64) (ed25519.PublicKey, error)
}

// Errors returned (wrapped) by the roomserver besides *auth.NotAllowedError
// (M_FORBIDDEN) and *pdu.FormatError (M_BAD_JSON, or M_TOO_LARGE when the
// event is too big).
var (
	ErrRoomNotFound  = errors.New("room not found")
	ErrEventNotFound = errors.New("event not found")
	ErrRoomExists    = errors.New("room already exists")
	ErrClosed        = errors.New("roomserver closed")
)

// BadRequestError is a request the roomserver cannot turn into an event
// (M_BAD_JSON / M_INVALID_PARAM for clients), for reasons other than the
// event format.
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return "bad request: " + e.Reason }

// TxnKey identifies a client transaction (client-server-api "Transaction
// identifiers"): a second request with the same key in the same room
// returns the first request's event instead of sending another.
type TxnKey struct {
	UserID, DeviceID, TxnID string
	// Endpoint is the kind of request that carried the transaction ID
	// (TxnSend, TxnRedact; required). The spec asks clients for IDs
	// unique per access token, but Synapse keys retries by request path,
	// so a client that numbers /send and /redact requests separately
	// does not get its message back for a redaction.
	Endpoint string
}

// The endpoints of TxnKey.Endpoint.
const (
	TxnSend   = "send"   // PUT /rooms/{roomId}/send/{eventType}/{txnId}
	TxnRedact = "redact" // PUT /rooms/{roomId}/redact/{eventId}/{txnId}
)

// EventRequest is a local event to send: the fields the client chooses.
type EventRequest struct {
	Type     string
	StateKey *string // nil for a message event
	Sender   string  // a local user ID
	Content  json.RawMessage
	Redacts  string // for m.room.redaction: the event redacted
	Txn      *TxnKey
}

// CreateRoomRequest asks for a new room.
type CreateRoomRequest struct {
	Creator string
	// Version is the room version; nil means pdu.DefaultRoomVersion.
	Version *pdu.RoomVersion
	// CreationContent is merged into the m.room.create event's content
	// (the server sets creator in versions that have it, and room_version).
	CreationContent json.RawMessage
	// Initial events are sent in order right after the create event, in
	// the same transaction: all of them are stored or none.
	Initial []EventRequest
}

// Output is an event that entered a room's timeline.
type Output struct {
	Event     *pdu.Event
	StreamPos int64
	// replay: the event was stored before (a retried transaction ID) and
	// is not published again.
	replay bool
	// record is the row stored, for the Observer (nil for a replay).
	record *storage.EventRecord
}

// Roomserver is the room component. It is safe for concurrent use.
type Roomserver struct {
	db         *storage.DB
	bus        *bus.Bus
	serverName string
	keys       *keys.Ring
	logger     *slog.Logger
	serverKeys ServerKeys
	observer   Observer

	queue chan *job
	// held are jobs taken from queue for a batch that could not take
	// them (absorb), run first by the next (committer goroutine only).
	held      []*job
	stop      chan struct{}
	stopOnce  sync.Once
	committer sync.WaitGroup
	pub       *publisher
	// cache is the committer's state cache; markedPos the published
	// position last written to the database (committer goroutine only).
	cache     stateCache
	markedPos int64
	// joinedServers caches JoinedServersAt by snapshot (any goroutine).
	joinedServers joinedServersCache
}

// New builds the roomserver: it makes sure the output stream exists,
// publishes the events a crash left unpublished, and starts the committer.
func New(d Deps) (*Roomserver, error) {
	if d.DB == nil || d.Bus == nil || d.Keys == nil || d.ServerName == "" {
		return nil, errors.New("roomserver: DB, Bus, Keys and ServerName are required")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	rs := &Roomserver{
		db:         d.DB,
		bus:        d.Bus,
		serverName: d.ServerName,
		keys:       d.Keys,
		logger:     logger.With("component", "roomserver"),
		serverKeys: d.ServerKeys,
		observer:   d.Observer,
		queue:      make(chan *job, queueSize),
		stop:       make(chan struct{}),
	}
	ctx := context.Background()
	pub, err := newPublisher(ctx, rs)
	if err != nil {
		return nil, err
	}
	rs.pub = pub
	if err := pub.republish(ctx); err != nil {
		pub.close()
		return nil, err
	}
	rs.committer.Add(1)
	go rs.commitLoop()
	return rs, nil
}

// Close stops accepting work, finishes the jobs already queued, waits for
// their output to be published and records the published position. Call it
// before closing the bus and the database.
func (rs *Roomserver) Close() {
	rs.stopOnce.Do(func() {
		close(rs.stop)
		rs.committer.Wait()
		rs.pub.close()
		if err := rs.db.SetPublishedPos(context.Background(), rs.pub.publishedPos()); err != nil {
			rs.logger.Warn("cannot record the published position", "err", err)
		}
	})
}

// ServerName is the server name the roomserver signs events as.
func (rs *Roomserver) ServerName() string { return rs.serverName }

// DB is the database the roomserver writes to, for the storage read
// functions that take room NIDs.
func (rs *Roomserver) DB() *storage.DB { return rs.db }

func wrapNotFound(err error, roomID string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("room %s: %w", roomID, ErrRoomNotFound)
	}
	return err
}
