package bus

import "encoding/json"

// EDU is an ephemeral data unit (server-server-api "EDUs") that a component
// queues for other servers through the federation sender
// (federation/sender: Queue from any process, or the Sender itself). It is
// defined here, beside the other messages components exchange, so that
// components that must not import federation can name it in the one-method
// interface they are given (internal/server wires the sender in).
type EDU struct {
	// Type is the edu_type: m.typing, m.receipt, m.direct_to_device, ...
	Type string `json:"edu_type"`
	// Content is the EDU's content, a JSON object.
	Content json.RawMessage `json:"content"`
	// Key, when not empty, names what the EDU is about (one user's typing
	// in one room, one user's presence, one receipt): a later EDU of the
	// same Type and Key for a destination replaces this one while it
	// still waits there, so a backlog keeps only the latest state. It must
	// not hold a NUL (join its parts with a space, which IDs never hold).
	Key string `json:"key,omitempty"`
	// Durable EDUs are stored until the destination acknowledges them,
	// across restarts and outages (receipts, to-device messages, device
	// list updates). Others are held in the sender's memory only, and not
	// queued at all for a destination that is backing off (typing,
	// presence): they would be stale by the time it is back.
	Durable bool `json:"durable,omitempty"`
}
