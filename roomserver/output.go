package roomserver

import (
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
	// OutputSubject is the subject of each event's message.
	OutputSubject = "roomserver.output.event"
)

// OutputEvent is the JSON of a message on the output stream. Consumers
// read the event itself from the database (storage.EventsByID) when they
// need more. The message ID (Nats-Msg-Id) is the stream position.
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

// publish sends evs asynchronously and waits for the acknowledgements. It
// returns how many, from the start, were acknowledged.
func (p *publisher) publish(evs []OutputEvent) (int, error) {
	js := p.rs.bus.JetStream()
	subject := p.rs.bus.Subject(OutputSubject)
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	var err error
	for _, ev := range evs {
		data, merr := json.Marshal(ev)
		if merr != nil {
			err = merr
			break
		}
		f, perr := js.PublishAsync(subject, data, jetstream.WithMsgID(strconv.FormatInt(ev.StreamPos, 10)))
		if perr != nil {
			err = perr
			break
		}
		futures = append(futures, f)
	}
	timeout := time.After(30 * time.Second)
	for i, f := range futures {
		select {
		case <-f.Ok():
		case ferr := <-f.Err():
			return i, fmt.Errorf("publish event at %d: %w", evs[i].StreamPos, ferr)
		case <-timeout:
			return i, fmt.Errorf("publish event at %d: no acknowledgement after 30s", evs[i].StreamPos)
		}
	}
	if err != nil {
		return len(futures), fmt.Errorf("publish room events: %w", err)
	}
	return len(futures), nil
}
