// Package sender is the federation sender: it sends the events this
// server creates to every other server in their rooms (server-server-api
// "Transactions", "PDUs" and "Sending events").
//
// A durable consumer of the roomserver's output stream queues each local
// event, in the database and before acknowledging it, for every server
// with a user joined to the room after the event, plus the target's server
// of a membership event (invites, kicks, bans). One worker per destination
// with queued events sends them in transactions of at most 50 PDUs
// (PUT /_matrix/federation/v1/send/{txnId}) and deletes them once the
// remote answers 200. A destination that cannot be reached is retried with
// exponential backoff (5 s doubling to an hour), kept in the database so
// it survives a restart, and retried at once when that server contacts us
// (Wake, called by federation.Authenticate). A destination that was down
// and has more than 50 events waiting is caught up with the latest event
// of each room only: the remote fetches the gap with /get_missing_events,
// as Synapse does.
//
// Transactions also carry up to 100 EDUs (edus.go): queued by anything
// with QueueEDU (Sender, or Queue from any process), durable ones in
// federation_edu_queue until delivered, the others in memory. The sender
// makes the m.typing, m.receipt and m.presence EDUs of local users itself
// from what it hears on the bus (typing.go, receipts.go, presence.go).
package sender
