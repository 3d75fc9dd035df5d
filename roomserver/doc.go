// Package roomserver is the one way room events enter Myelin, and the place
// every component asks about rooms.
//
// # The input path
//
// Local events (Send, CreateRoom) and received events (InputReceived, for
// federation) go through the same stages (design notes "One path for every
// room change"; server-server-api "Checks performed on receipt of a PDU"):
//
//  1. format, hashes and signatures (a local event is built and signed
//     here, so these hold by construction);
//  2. auth against the event's auth events (auth.CheckAuthEvents);
//  3. auth against the state before the event: the state after its prev
//     event, or the resolution (stateres.Resolve) of the states after its
//     prev events when there are several; a failure rejects the event;
//  4. auth against the current state; a failure soft-fails the event;
//  5. persist the event with its state snapshot, move the forward
//     extremities and the current state, take a stream position;
//  6. after commit, publish it on the output stream.
//
// A local event is built against the current state with the forward
// extremities as prev_events, so its auth events are current state and the
// state before it is the current state: stages 2 to 4 are one auth.Check.
//
// # Serialisation and batching
//
// One goroutine (the committer) runs every write of this process: it takes
// the jobs queued by Send, CreateRoom and InputReceived, runs as many as are
// waiting in one database transaction (one fsync for all of them, a
// savepoint per job so that a refused job leaves nothing behind), and
// publishes their output after the commit. A room therefore has one writer
// at a time in a process; across processes on PostgreSQL each transaction
// also takes an advisory lock per room (storage.(*Tx).LockRoom), in room ID
// order so that two processes cannot deadlock.
//
// The committer keeps, per room, the parsed current state events it has
// looked up, keyed by the snapshot of the current state (cache.go), so a
// message reads no state from the database: its auth events (create,
// power levels, the sender's membership) come from memory. State is stored
// as deltas with integer IDs (storage/state.go explains the scheme and its
// bounds).
//
// Measured on the 2-core development machine, SQLite, shared with other
// work (BenchmarkSendOneRoom, BenchmarkJoin, BenchmarkCreateRoom): 1,500 to
// 4,400 messages/s into one room from 10 concurrent senders with p99 5 to
// 20 ms; a join in about 1.1 ms at 10 members and 1.2 ms at 1,000; 240 to
// 280 rooms created/s one after another.
//
// # Output
//
// Every event that enters a room's timeline gets a position in the global
// stream (storage.(*Tx).NextStreamPos) and is published on the JetStream
// stream ROOMSERVER_OUTPUT, subject roomserver.output.event, in messages
// that each carry the events of one commit or more, with their first and
// last positions as message ID (see Output, OutputEvent and DecodeOutput).
// The last published position is stored; on start, events committed after
// it (a crash between commit and publish) are published again.
//
// # Queries
//
// query.go answers questions about rooms (current state, memberships,
// events, the state before and after an event). History visibility
// (client-server-api "Room History Visibility") is one rule,
// EventVisibility in visibility_rule.go, with no I/O; visibility.go feeds
// it from state snapshots (FilterVisible, CanUserSee), and syncapi feeds it
// from one query per room for whole pages of /sync, /messages and /context.
package roomserver
