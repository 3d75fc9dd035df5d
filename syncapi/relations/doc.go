// Package relations keeps and reads event relationships (client-server-api
// "Forming relationships between events", "Event replacements", "Threading",
// "Reference relations"):
//
//   - the roomserver records which event relates to which
//     (storage.Relation) in the transaction that stores the event, and
//     forgets a relation when its child is redacted, so that reads never
//     scan event contents and never see an event before its relation;
//   - Load computes the bundled aggregations (unsigned["m.relations"]) of a
//     page of events: m.replace, m.thread and m.reference, with a constant
//     number of queries whatever the page's size;
//   - Ranges turns a user's history visibility in a room into the stream
//     position ranges they may see, which the queries apply, so that a
//     count or a latest thread reply never includes what the user may not
//     see;
//   - Parse reads an event's m.relates_to (pdu.ParseRelatesTo).
//
// The HTTP endpoints (/relations, /threads) are syncapi's; clientapi's GET
// /event uses Load too.
package relations
