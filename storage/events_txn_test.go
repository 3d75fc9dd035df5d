package storage_test

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"testing"
	"testing/fstest"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// Transaction IDs are per endpoint: the same ID on "send" and "redact" is
// two transactions.
func TestTxnEndpoints(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		msg, red := insertTxnEvents(ctx, t, db)
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			if err := tx.InsertTxn(ctx, msg.RoomNID, "@a:test", "DEV", "send", "same", msg.NID); err != nil {
				return err
			}
			return tx.InsertTxn(ctx, red.RoomNID, "@a:test", "DEV", "redact", "same", red.NID)
		})
		if err != nil {
			t.Fatal(err)
		}
		checkTxn(ctx, t, db, msg.RoomNID, "send", "same", "$msg")
		checkTxn(ctx, t, db, msg.RoomNID, "redact", "same", "$red")
		checkTxn(ctx, t, db, msg.RoomNID, "state", "same", "")
	})
}

// Migration 0007 carries the transaction IDs stored before it, guessing
// their endpoint from the event type.
func TestTxnEndpointMigration(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		msg, red := insertTxnEvents(ctx, t, db)
		// Back to the schema before 0007 (the table of migration 0003),
		// with rows in it.
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, stmt := range []string{
				`DROP TABLE event_txns`,
				`CREATE TABLE event_txns (room_nid BIGINT NOT NULL, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
					txn_id TEXT NOT NULL, event_nid BIGINT NOT NULL, PRIMARY KEY (room_nid, user_id, device_id, txn_id))`,
				`CREATE INDEX event_txns_event ON event_txns (event_nid)`,
				// 0007 and what came after it count as not applied;
				// only 0007 runs again (migrationsUpTo below).
				`DELETE FROM schema_migrations WHERE version >= 7`,
			} {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			for _, r := range []*storage.EventRecord{msg, red} {
				if _, err := tx.Exec(ctx, `INSERT INTO event_txns (room_nid, user_id, device_id, txn_id, event_nid)
					VALUES ($1, '@a:test', 'DEV', $2, $3)`, r.RoomNID, "old"+r.EventID, r.NID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, migrationsUpTo(t, 7)); err != nil {
			t.Fatal(err)
		}
		checkTxn(ctx, t, db, msg.RoomNID, "send", "old$msg", "$msg")
		checkTxn(ctx, t, db, msg.RoomNID, "redact", "old$red", "$red")
		checkTxn(ctx, t, db, msg.RoomNID, "redact", "old$msg", "")
		ids, err := db.TxnIDs(ctx, "@a:test", "DEV", []string{"$msg", "$red"})
		if err != nil || ids["$msg"] != "old$msg" || ids["$red"] != "old$red" {
			t.Errorf("TxnIDs after the migration: %v, %v", ids, err)
		}
		// By NID, and only for events the user sent.
		other := &storage.EventRecord{NID: msg.NID, Sender: "@b:test"}
		byNID, err := db.TxnIDsOf(ctx, "@a:test", "DEV", []*storage.EventRecord{msg, red, other})
		if err != nil || len(byNID) != 2 || byNID[msg.NID] != "old$msg" || byNID[red.NID] != "old$red" {
			t.Errorf("TxnIDsOf after the migration: %v, %v", byNID, err)
		}
		if byNID, err := db.TxnIDsOf(ctx, "@b:test", "DEV", []*storage.EventRecord{other}); err != nil || len(byNID) != 0 {
			t.Errorf("TxnIDsOf for another user: %v, %v", byNID, err)
		}
	})
}

// migrationsUpTo is the embedded migrations up to number last, so that
// running last again (after deleting its schema_migrations row) does not
// run the later ones again.
func migrationsUpTo(t *testing.T, last int) fstest.MapFS {
	t.Helper()
	names, err := fs.Glob(storage.MigrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, name := range names {
		if path.Base(name)[:4] > fmt.Sprintf("%04d", last) { // NNNN_what.sql
			continue
		}
		data, err := fs.ReadFile(storage.MigrationFiles, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: data}
	}
	return fsys
}

// insertTxnEvents stores a room with a message and a redaction.
func insertTxnEvents(ctx context.Context, t *testing.T, db *storage.DB) (msg, red *storage.EventRecord) {
	t.Helper()
	err := db.WithTx(ctx, func(tx *storage.Tx) error {
		room, err := tx.InsertRoom(ctx, "!txn:test", "11")
		if err != nil {
			return err
		}
		msg = &storage.EventRecord{EventID: "$msg", RoomNID: room, Type: "m.room.message", Sender: "@a:test",
			Depth: 1, OriginServerTS: 1, StreamPos: mustPos(ctx, t, tx), JSON: []byte(`{}`)}
		red = &storage.EventRecord{EventID: "$red", RoomNID: room, Type: "m.room.redaction", Sender: "@a:test",
			Depth: 2, OriginServerTS: 2, StreamPos: mustPos(ctx, t, tx), Redacts: "$msg", JSON: []byte(`{}`)}
		for _, r := range []*storage.EventRecord{msg, red} {
			if r.NID, err = tx.InsertEvent(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg, red
}

// checkTxn fails unless the transaction (endpoint, txnID) of @a:test's
// device DEV produced the event wantID ("" for none).
func checkTxn(ctx context.Context, t *testing.T, db *storage.DB, roomNID int64, endpoint, txnID, wantID string) {
	t.Helper()
	var got *storage.EventRecord
	err := db.WithTx(ctx, func(tx *storage.Tx) error {
		var err error
		got, err = tx.TxnEvent(ctx, roomNID, "@a:test", "DEV", endpoint, txnID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	gotID := ""
	if got != nil {
		gotID = got.EventID
	}
	if gotID != wantID {
		t.Errorf("transaction %s %s: event %q, want %q", endpoint, txnID, gotID, wantID)
	}
}
