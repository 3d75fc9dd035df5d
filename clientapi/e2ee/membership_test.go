package e2ee

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func outputMessage(t *testing.T, seq uint64, out roomserver.OutputEvent) *bus.Message {
	t.Helper()
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Sequence: seq, Data: data}
}

// TestRoomOutputBatches: a batch of the roomserver's output is handled as
// a whole: a malformed message is skipped rather than failing the batch
// (which would redeliver it forever), events other than leaves and bans
// touch nothing, and a database failure on a leave fails the batch so that
// it is delivered again.
func TestRoomOutputBatches(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			db := storagetest.Open(t, d)
			s, err := New(Config{DB: db, ServerName: "example.org"})
			if err != nil {
				t.Fatal(err)
			}
			alice := "@alice:remote.example"
			leave := roomserver.OutputEvent{StreamPos: 3, RoomID: "!room:example.org", EventID: "$leave",
				Type: "m.room.member", StateKey: &alice, Sender: alice, Membership: "leave"}
			batch := []*bus.Message{
				{Sequence: 1, Data: []byte("{not json")},
				outputMessage(t, 2, roomserver.OutputEvent{StreamPos: 2, RoomID: "!room:example.org", EventID: "$msg",
					Type: "m.room.message", Sender: alice}),
				outputMessage(t, 3, leave),
			}
			if err := s.onRoomOutputs(context.Background(), batch); err != nil {
				t.Fatalf("batch with a malformed message: %v", err)
			}

			// Events this consumer ignores never reach the database...
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.onRoomOutputs(context.Background(), batch[:2]); err != nil {
				t.Fatalf("batch without a leave, database closed: %v", err)
			}
			// ...and a leave that cannot be recorded fails the batch.
			if err := s.onRoomOutputs(context.Background(), batch); err == nil {
				t.Fatal("batch with a leave, database closed: no error")
			}
		})
	}
}
