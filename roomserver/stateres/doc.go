// Package stateres implements Matrix state resolution: given the room states
// at several forward extremities (or prev_events) of a room, it computes the
// one state the room is in after them.
//
// Three algorithms are implemented, chosen by pdu.RoomVersion.StateRes:
//
//   - v1 (room version 1): rooms/v1.md "State resolution". Conflicts are
//     resolved per key, power levels first, then join rules, then
//     memberships, then everything else, ordering candidates by depth and
//     SHA-1 of the event ID.
//   - v2 (room versions 2–11): rooms/fragments/v2-state-res.md. The
//     conflicted events and the auth difference are sorted (reverse
//     topological power ordering for power events, mainline ordering for the
//     rest) and replayed through the authorization rules on top of the
//     unconflicted state.
//   - v2.1 (room version 12, MSC4297): rooms/v12.md "State resolution". As
//     v2, but the replay starts from the empty state and the events on auth
//     paths between conflicted events (the conflicted state subgraph) are
//     replayed too.
//
// Where the spec is vague the package follows Synapse, the reference
// implementation, and says so where it matters (see v2.go).
//
// The package is pure: no I/O, no clock, no mutable globals. Events come from
// an EventSource supplied by the caller; every event that the algorithm needs
// must be available from it, otherwise Resolve returns a *MissingEventError.
//
// Cost. Only the conflicted events, the auth difference (and in v2.1 the
// conflicted subgraph) are sorted and checked; the unconflicted state is
// never re-authorised. The auth difference needs the auth chains of the
// unconflicted state: each unconflicted event is fetched once to read its
// auth events, and the events of those chains are interned to small integers
// for the duration of the resolution, so every walk is memoised and the
// sorts work on slices. A store that indexes auth chains can implement
// AuthChainSource and spare the fetches. In a 10,000 member room a fork with
// 100 conflicted keys resolves in milliseconds and about 1 MB, most of it
// the returned map (see BenchmarkResolve10kMembers).
//
// Resolve is safe for concurrent use when the EventSource is.
package stateres
