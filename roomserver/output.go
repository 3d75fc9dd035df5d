package roomserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/myelin-chat/myelin/storage"
)

// The output stream: every event that enters a room's timeline, in stream
// position order.
const (
	// OutputStream is the JetStream stream (without the bus namespace).
	OutputStream = "ROOMSERVER_OUTPUT"
	// OutputSubject is the subject of the output messages.
	OutputSubject = "roomserver.output.event"
	// maxOutputMessage bounds the events of one message (about 400 bytes
	// each: far below NATS's default limit of 1 MB a message).
	maxOutputMessage = 256
)

// An output message is a JSON array of OutputEvent: the events of one
// commit or more, in stream order, published together because each
// message costs the bus and every consumer about the same whatever it
// carries (with a message per event, the bus and its consumers took ~14%
// of the server's CPU under a send load; batched, the server's CPU per
// message fell by ~8%). Its
// message ID (Nats-Msg-Id) is "<first>-<last>" stream position, so a
// message published again as it was is dropped by the stream; one
// regrouped (a publish retried, events republished after a crash) may
// deliver some events twice, which consumers take in their stride.
// Earlier versions published one OutputEvent object per message; read
// messages with DecodeOutput, which takes both.

// OutputEvent is an event of an output message. Consumers read the event
// itself from the database (storage.EventsByID) when they need more.
type OutputEvent struct {
	StreamPos  int64   `json:"stream_pos"`
	RoomID     string  `json:"room_id"`
	EventID    string  `json:"event_id"`
	Type       string  `json:"type"`
	StateKey   *string `json:"state_key,omitempty"`
	Sender     string  `json:"sender"`
	Membership string  `json:"membership,omitempty"` // of m.room.member events
	// The state snapshots before and after the event, and its state key's
	// NID (storage.EventRecord's; every process shares the database that
	// numbers them), so that a consumer needing only the room's state at
	// the event need not read the event back.
	StateBeforeNID int64 `json:"state_before_nid,omitempty"`
	StateAfterNID  int64 `json:"state_after_nid,omitempty"`
	StateKeyNID    int64 `json:"state_key_nid,omitempty"`
}

// DecodeOutput reads an output message: an array of events, or a single
// event as earlier versions published.
func DecodeOutput(data []byte) ([]OutputEvent, error) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) > 0 && data[0] == '{' {
		var ev OutputEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, fmt.Errorf("output message: %w", err)
		}
		return []OutputEvent{ev}, nil
	}
	var evs []OutputEvent
	if err := json.Unmarshal(data, &evs); err != nil {
		return nil, fmt.Errorf("output message: %w", err)
	}
	return evs, nil
}

// Record is the part of the stored event that o carries, or nil when o
// does not carry its state (published by an earlier version).
func (o *OutputEvent) Record() *storage.EventRecord {
	if o.StateAfterNID == 0 && o.StateBeforeNID == 0 {
		return nil
	}
	return &storage.EventRecord{StreamPos: o.StreamPos, RoomID: o.RoomID, EventID: o.EventID, Type: o.Type,
		StateKey: o.StateKey, StateKeyNID: o.StateKeyNID, Sender: o.Sender, Membership: o.Membership,
		StateBeforeNID: o.StateBeforeNID, StateAfterNID: o.StateAfterNID}
}

// publisher publishes committed output in order, off the committer's
// path, and tracks the position up to which everything is published.
type publisher struct {
	rs *Roomserver

	mu        sync.Mutex
	cond      *sync.Cond
	pending   []OutputEvent
	closing   bool
	published int64

	done chan struct{}
}

func newPublisher(ctx context.Context, rs *Roomserver) (*publisher, error) {
	err := rs.bus.EnsureStream(ctx, jetstream.StreamConfig{
		Name:     OutputStream,
		Subjects: []string{"roomserver.output.>"},
		// Long enough to drop what a restart republishes.
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("roomserver: %w", err)
	}
	pos, err := rs.db.PublishedPos(ctx)
	if err != nil {
		return nil, fmt.Errorf("roomserver: %w", err)
	}
	p := &publisher{rs: rs, published: pos, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.loop()
	return p, nil
}

// republish queues the events committed after the last recorded published
// position (a crash between commit and publish). Called before the
// committer starts, so they go out before any new event.
func (p *publisher) republish(ctx context.Context) error {
	from := p.publishedPos()
	n := 0
	for {
		recs, err := p.rs.db.EventsAfterPos(ctx, from, 1000)
		if err != nil {
			return fmt.Errorf("roomserver: republish: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		evs := make([]OutputEvent, len(recs))
		for i, r := range recs {
			evs[i] = outputOfRecord(r)
		}
		p.push(evs)
		n += len(recs)
		from = recs[len(recs)-1].StreamPos
	}
	if n > 0 {
		p.rs.logger.Info("republishing room events committed but not known to be published", "events", n)
	}
	return nil
}

func outputOfRecord(r *storage.EventRecord) OutputEvent {
	return OutputEvent{StreamPos: r.StreamPos, RoomID: r.RoomID, EventID: r.EventID, Type: r.Type,
		StateKey: r.StateKey, Sender: r.Sender, Membership: r.Membership,
		StateBeforeNID: r.StateBeforeNID, StateAfterNID: r.StateAfterNID, StateKeyNID: r.StateKeyNID}
}

// enqueue hands committed outputs (in stream order) to the publisher.
func (p *publisher) enqueue(outs []Output) {
	if len(outs) == 0 {
		return
	}
	evs := make([]OutputEvent, len(outs))
	for i, o := range outs {
		ev := o.Event
		if o.record != nil {
			evs[i] = outputOfRecord(o.record)
			continue
		}
		evs[i] = OutputEvent{StreamPos: o.StreamPos, RoomID: ev.RoomID(), EventID: ev.EventID(),
			Type: ev.Type(), StateKey: ev.StateKey(), Sender: ev.Sender(), Membership: ev.Membership()}
	}
	p.push(evs)
}

func (p *publisher) push(evs []OutputEvent) {
	p.mu.Lock()
	p.pending = append(p.pending, evs...)
	p.mu.Unlock()
	p.cond.Signal()
}

// publishedPos is the position up to which every output is published.
func (p *publisher) publishedPos() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published
}

// close publishes what is pending (giving up after a few failed attempts:
// the next start republishes it) and stops the loop.
func (p *publisher) close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.cond.Signal()
	<-p.done
}

func (p *publisher) loop() {
	defer close(p.done)
	failures := 0
	for {
		p.mu.Lock()
		for len(p.pending) == 0 && !p.closing {
			p.cond.Wait()
		}
		if len(p.pending) == 0 || (p.closing && failures >= 3) {
			p.mu.Unlock()
			return
		}
		batch := p.pending
		p.mu.Unlock()

		n, err := p.publish(batch)
		p.mu.Lock()
		if n > 0 {
			p.published = max(p.published, batch[n-1].StreamPos)
			p.pending = p.pending[n:]
		}
		p.mu.Unlock()
		if err != nil {
			failures++
			p.rs.logger.Warn("cannot publish room events; retrying", "err", err, "failures", failures)
			time.Sleep(min(time.Duration(failures)*100*time.Millisecond, 5*time.Second))
			continue
		}
		failures = 0
	}
}

// publish sends evs asynchronously, in messages of up to
// maxOutputMessage events, and waits for the acknowledgements. It returns
// how many events, from the start, were acknowledged.
func (p *publisher) publish(evs []OutputEvent) (int, error) {
	js := p.rs.bus.JetStream()
	subject := p.rs.bus.Subject(OutputSubject)
	var futures []jetstream.PubAckFuture
	var ends []int // the end in evs of each message
	var err error
	for start := 0; start < len(evs); start += maxOutputMessage {
		part := evs[start:min(start+maxOutputMessage, len(evs))]
		data, merr := json.Marshal(part)
		if merr != nil {
			err = merr
			break
		}
		id := strconv.FormatInt(part[0].StreamPos, 10) + "-" + strconv.FormatInt(part[len(part)-1].StreamPos, 10)
		f, perr := js.PublishAsync(subject, data, jetstream.WithMsgID(id))
		if perr != nil {
			err = perr
			break
		}
		futures = append(futures, f)
		ends = append(ends, start+len(part))
	}
	timeout := time.After(30 * time.Second)
	acked := 0
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked = ends[i]
		case ferr := <-f.Err():
			return acked, fmt.Errorf("publish events from %d: %w", evs[acked].StreamPos, ferr)
		case <-timeout:
			return acked, fmt.Errorf("publish events from %d: no acknowledgement after 30s", evs[acked].StreamPos)
		}
	}
	if err != nil {
		return acked, fmt.Errorf("publish room events: %w", err)
	}
	return acked, nil
}
