package relations

// Recording relationships from the roomserver's output stream.
//
// The consumer is durable and shared: every sync process runs it under the
// same name, JetStream hands each message to one of them, and with one
// message in flight at a time the stream is applied in order. Each message
// reads its event from the database (the stream carries no content), and
// writing a relation twice keeps one row, so redelivery after a crash is
// harmless.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// durableName is the consumer's name on the bus, which keeps its position.
const durableName = "syncapi_relations"

// Consumer records relationships as the roomserver's output delivers
// events.
type Consumer struct {
	db *storage.DB
	c  *bus.Consumer
}

// StartConsumer starts recording. Stop it before the bus closes.
func StartConsumer(ctx context.Context, db *storage.DB, b *bus.Bus, logger *slog.Logger) (*Consumer, error) {
	c := &Consumer{db: db}
	bc, err := b.Consume(ctx, bus.ConsumerConfig{
		Stream:         roomserver.OutputStream,
		Durable:        durableName,
		FilterSubjects: []string{roomserver.OutputSubject},
		// A message given up on is a relation never served: retry long.
		MaxDeliver: 1000,
	}, c.handle)
	if err != nil {
		return nil, fmt.Errorf("relations: %w", err)
	}
	c.c = bc
	return c, nil
}

// Stop stops recording; what is not yet recorded is when it starts again.
func (c *Consumer) Stop() { c.c.Stop() }

func (c *Consumer) handle(ctx context.Context, msg *bus.Message) error {
	var out roomserver.OutputEvent
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		return bus.Permanent(fmt.Errorf("relations: output message %d: %w", msg.Sequence, err))
	}
	if err := Record(ctx, c.db, out.EventID); err != nil {
		return fmt.Errorf("relations: %s: %w", out.EventID, err)
	}
	return nil
}

// Record applies one timeline event to the relations tables: its own
// relationship, and for a redaction the removal of its target's. It may be
// called again for the same event.
func Record(ctx context.Context, db *storage.DB, eventID string) error {
	recs, err := db.EventsByID(ctx, []string{eventID})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("event %s: %w", eventID, storage.ErrNotFound)
	}
	ev := recs[0]
	if ev.StreamPos == 0 || ev.Rejected || ev.SoftFailed {
		return nil
	}
	var target *storage.EventRecord
	if ev.Type == "m.room.redaction" && ev.Redacts != "" {
		targets, err := db.EventsByID(ctx, []string{ev.Redacts})
		if err != nil {
			return err
		}
		// Only a redaction the roomserver applied breaks the relationship
		// (one refused by the auth rules leaves the target whole).
		if len(targets) == 1 && targets[0].RedactedBy != "" && targets[0].RoomNID == ev.RoomNID {
			target = targets[0]
		}
	}
	rel, ok := Parse(ev.JSON)
	ok = ok && ev.RedactedBy == "" // redacted: the relationship is broken
	if !ok && target == nil {
		return nil
	}
	return db.WithTx(ctx, func(tx *storage.Tx) error {
		if target != nil {
			if err := tx.DeleteRelation(ctx, target.NID); err != nil {
				return err
			}
		}
		if !ok {
			return nil
		}
		return tx.InsertRelation(ctx, storage.Relation{
			EventNID: ev.NID, EventID: ev.EventID, RoomNID: ev.RoomNID,
			RelatesTo: rel.EventID, RelType: rel.RelType, EventType: ev.Type, Sender: ev.Sender,
			StreamPos: ev.StreamPos, OriginServerTS: ev.OriginServerTS, AggregationKey: rel.Key,
		})
	})
}
