package bus

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler processes messages, in stream order, as one unit: nil
// acknowledges them all; an error gets them all redelivered (those on
// their last delivery are dropped), so it must be idempotent like Handler.
// A message the handler cannot use at all it skips (and logs) rather than
// failing the batch.
type BatchHandler func(ctx context.Context, msgs []*Message) error

// ConsumeBatches is Consume for handlers that do better with many messages
// at once (one database transaction for a burst rather than one each): h
// gets every message waiting, up to max, whenever at least one is.
// MaxAckPending defaults to max.
func (b *Bus) ConsumeBatches(ctx context.Context, cfg ConsumerConfig, max int, h BatchHandler) (*Consumer, error) {
	if max < 1 {
		return nil, errors.New("bus: a batch holds at least one message")
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = max
	}
	return b.consume(ctx, cfg, func(c *Consumer) { c.batchHandler, c.batchMax = h, max })
}

// runBatches is run for a batch handler: a feeder fetches into a channel,
// and each round takes what is there.
func (c *Consumer) runBatches(log *slog.Logger) {
	fetched := make(chan jetstream.Msg, c.batchMax)
	go func() {
		defer close(fetched)
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
			fetched <- m
		}
	}()
	for m := range fetched {
		batch := []jetstream.Msg{m}
	more:
		for len(batch) < c.batchMax {
			select {
			case m, ok := <-fetched:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		select {
		case <-c.stopping:
			// Fetched before Stop: give them back now.
			for _, m := range batch {
				_ = m.Nak()
			}
			continue
		default:
		}
		c.handleBatch(batch, log)
	}
}

func (c *Consumer) handleBatch(batch []jetstream.Msg, log *slog.Logger) {
	msgs := make([]*Message, 0, len(batch))
	live := batch[:0:0]
	for _, m := range batch {
		if msg := c.message(m, log); msg != nil {
			msgs = append(msgs, msg)
			live = append(live, m)
		}
	}
	if len(msgs) == 0 {
		return
	}
	// A failed batch is retried here, after the backoff, rather than
	// handed back: handing it back would let later messages overtake it.
	for {
		err := c.call(live, func() error { return c.batchHandler(c.ctx, msgs) })
		if err == nil {
			// Acknowledgements are handled in order: confirming the
			// last one confirms them all.
			for _, m := range live[:len(live)-1] {
				_ = m.Ack()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if aerr := live[len(live)-1].DoubleAck(ctx); aerr != nil {
				log.Warn("acknowledgement not confirmed; the messages may be delivered again",
					"first_seq", msgs[0].Sequence, "last_seq", msgs[len(msgs)-1].Sequence, "err", aerr)
			}
			return
		}
		tries := msgs[0].NumDelivered
		if tries >= uint64(c.cfg.MaxDeliver) {
			log.Error("batch failed on its last delivery; dropped", "first_seq", msgs[0].Sequence, "messages", len(msgs),
				"deliveries", tries, "err", err)
			for _, m := range live {
				_ = m.Term()
			}
			return
		}
		delay := c.cfg.backoff(tries)
		log.Warn("batch failed; will retry", "first_seq", msgs[0].Sequence, "messages", len(msgs), "retry_in", delay, "err", err)
		select {
		case <-c.stopping:
			for _, m := range live {
				_ = m.Nak()
			}
			return
		case <-time.After(delay):
		}
		for _, m := range msgs {
			m.NumDelivered++
		}
	}
}
