package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is one delivery of a stored message to a consumer.
type Message struct {
	// Subject without the namespace.
	Subject string
	Data    []byte
	Header  nats.Header
	// Sequence is the message's position in its stream: the same on every
	// delivery, increasing with publication order.
	Sequence uint64
	// NumDelivered counts deliveries of this message, 1 the first time.
	NumDelivered uint64
	// Timestamp is when the stream stored the message.
	Timestamp time.Time
}

// Handler processes one message. Returning nil acknowledges it; an error
// gets it redelivered later (see ConsumerConfig), unless it wraps Permanent.
// Handlers must be idempotent: delivery is at least once.
type Handler func(ctx context.Context, msg *Message) error

// Permanent marks a handler error that no retry can fix (a malformed
// message): the message is logged and terminated at once.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// ConsumerConfig describes a durable consumer. Zero values take the defaults
// noted.
type ConsumerConfig struct {
	// Stream is the stream's name without the namespace.
	Stream string
	// Durable names the consumer; the server keeps its position under this
	// name across restarts. Letters, digits, '-' and '_'.
	Durable string
	// FilterSubjects, without the namespace, limit the consumer to some of
	// the stream's subjects; empty means all. More than one needs NATS 2.10
	// or later.
	FilterSubjects []string
	// MaxDeliver bounds deliveries of one message; after the last failed
	// one the message is logged and terminated. Default 5.
	MaxDeliver int
	// Backoff is the delay before the first redelivery after a handler
	// error; it doubles on each further failure up to MaxBackoff.
	// Defaults 1s and 1m.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// AckWait is how long the server waits for an acknowledgement before it
	// redelivers. A running handler renews it, so it only matters when a
	// process dies mid-message. Default 30s.
	AckWait time.Duration
	// MaxAckPending bounds the messages handed out and not yet acknowledged.
	// The default, 1, processes the stream strictly in order, a failing
	// message holding back the ones after it; raise it when order does not
	// matter.
	MaxAckPending int
}

func (c *ConsumerConfig) setDefaults() {
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 1
	}
}

// backoff is the delay before redelivering a message delivered n times.
func (c *ConsumerConfig) backoff(n uint64) time.Duration {
	d := c.Backoff
	for i := uint64(1); i < n && d < c.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff)
}

// Consumer is a running durable consumer.
type Consumer struct {
	bus     *Bus
	cfg     ConsumerConfig
	handler Handler
	// batchHandler, with batchMax, replaces handler for ConsumeBatches.
	batchHandler BatchHandler
	batchMax     int
	ctx          context.Context
	iter         jetstream.MessagesContext

	stopOnce sync.Once
	stopping chan struct{}
	done     chan struct{}
}

// Consume creates (or updates) the durable consumer cfg describes and calls
// h for each message, one at a time, from a goroutine of its own. The
// handler runs with ctx; cancelling ctx stops the consumer like Stop.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (*Consumer, error) {
	return b.consume(ctx, cfg, func(c *Consumer) { c.handler = h })
}

// consume starts the durable consumer cfg describes; set gives it its
// handler before it runs.
func (b *Bus) consume(ctx context.Context, cfg ConsumerConfig, set func(*Consumer)) (*Consumer, error) {
	cfg.setDefaults()
	if cfg.Stream == "" || cfg.Durable == "" {
		return nil, errors.New("bus: a consumer needs a stream and a durable name")
	}
	filters := make([]string, len(cfg.FilterSubjects))
	for i, s := range cfg.FilterSubjects {
		filters[i] = b.Subject(s)
	}
	jc := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
	}
	switch len(filters) {
	case 0:
	case 1:
		jc.FilterSubject = filters[0]
	default:
		jc.FilterSubjects = filters
	}

	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return nil, errors.New("bus: closed")
	}

	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.StreamName(cfg.Stream), jc)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on stream %s: %w", cfg.Durable, cfg.Stream, err)
	}
	// Fetch no more than can be handed out: the rest would sit in the
	// buffer and, if the consumer stopped, wait for AckWait to come back.
	iter, err := cons.Messages(jetstream.PullMaxMessages(cfg.MaxAckPending))
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on stream %s: %w", cfg.Durable, cfg.Stream, err)
	}
	c := &Consumer{
		bus:      b,
		cfg:      cfg,
		ctx:      ctx,
		iter:     iter,
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	set(c)
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		iter.Stop()
		return nil, errors.New("bus: closed")
	}
	b.consumers[c] = struct{}{}
	b.mu.Unlock()

	go c.run()
	go func() {
		select {
		case <-ctx.Done():
			c.Stop()
		case <-c.done:
		}
	}()
	return c, nil
}

// Stop stops delivery and waits for the handler in flight to return (so a
// handler must heed its context; Bus.Close waits too). Messages already
// fetched but not handled are handed back to the server for redelivery. Do
// not call Stop from the consumer's own handler.
func (c *Consumer) Stop() {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.iter.Drain()
	})
	<-c.done
}

func (c *Consumer) run() {
	defer func() {
		c.bus.mu.Lock()
		delete(c.bus.consumers, c)
		c.bus.mu.Unlock()
		close(c.done)
	}()
	log := c.bus.logger.With("stream", c.cfg.Stream, "consumer", c.cfg.Durable)
	if c.batchHandler != nil {
		c.runBatches(log)
		return
	}
	for {
		m, err := c.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			log.Warn("cannot fetch from the bus", "err", err)
			select {
			case <-c.stopping:
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-c.stopping:
			// Fetched before Stop: give it back now rather than after
			// AckWait.
			_ = m.Nak()
			continue
		default:
		}
		c.handle(m, log)
	}
}

// message turns a delivery into a Message; a delivery that is not a
// JetStream message is logged and terminated (nil).
func (c *Consumer) message(m jetstream.Msg, log *slog.Logger) *Message {
	meta, err := m.Metadata()
	if err != nil {
		log.Error("not a JetStream message; dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return nil
	}
	return &Message{
		Subject:      strings.TrimPrefix(m.Subject(), c.bus.namespace+"."),
		Data:         m.Data(),
		Header:       m.Headers(),
		Sequence:     meta.Sequence.Stream,
		NumDelivered: meta.NumDelivered,
		Timestamp:    meta.Timestamp,
	}
}

func (c *Consumer) handle(m jetstream.Msg, log *slog.Logger) {
	msg := c.message(m, log)
	if msg == nil {
		return
	}

	// Failures end in Term, not TermWithReason: servers before 2.10.4
	// ignore the latter and would redeliver (Debian ships 2.9). The reason
	// is in our log line.
	err := c.call([]jetstream.Msg{m}, func() error { return c.handler(c.ctx, msg) })
	switch {
	case err == nil:
		// Wait for the server to record the acknowledgement, so that a
		// clean shutdown right after it cannot lose the position.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if aerr := m.DoubleAck(ctx); aerr != nil {
			log.Warn("acknowledgement not confirmed; the message may be delivered again",
				"seq", msg.Sequence, "err", aerr)
		}
	case errors.As(err, new(permanentError)):
		log.Error("message refused by its handler; dropped", "seq", msg.Sequence, "subject", msg.Subject, "err", err)
		_ = m.Term()
	case msg.NumDelivered >= uint64(c.cfg.MaxDeliver):
		log.Error("message failed on its last delivery; dropped", "seq", msg.Sequence, "subject", msg.Subject,
			"deliveries", msg.NumDelivered, "err", err)
		_ = m.Term()
	default:
		delay := c.cfg.backoff(msg.NumDelivered)
		log.Warn("message failed; will retry", "seq", msg.Sequence, "subject", msg.Subject,
			"deliveries", msg.NumDelivered, "retry_in", delay, "err", err)
		_ = m.NakWithDelay(delay)
	}
}

// call runs a handler on ms, renewing the server's ack timer of each while
// it works and turning a panic into an error.
func (c *Consumer) call(ms []jetstream.Msg, handler func() error) (err error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range ms {
					_ = m.InProgress()
				}
			}
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panic: %v\n%s", v, debug.Stack())
		}
	}()
	return handler()
}
