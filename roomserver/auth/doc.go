// Package auth implements the authorization rules of Matrix rooms for room
// versions 1 to 12: whether an event is allowed given a room state, which
// state events an event must cite as its auth_events, and the power levels
// model those rules are built on.
//
// Spec: rooms/v1.md … v12.md "Authorisation rules" (and rooms/fragments/
// v1-auth-rules.md, v3-auth-rules.md, v8-auth-rules.md),
// server-server-api.md "Checks performed on receipt of a PDU", "Auth events
// selection", "Rejection"; appendices.md "User Identifiers", "Server Name".
//
// Check applies the rules against a state given as a lookup function, so the
// same code serves the three checks of a received PDU (against its auth
// events, against the state before it, against the current state, the last
// deciding soft failure) and the iterative auth checks of state resolution.
// CheckAuthEvents adds the rules about the auth_events list itself, and
// SelectAuthEvents says which state events a new event must cite. A Checker
// does the same as Check and CheckAuthEvents while keeping parsed create and
// power levels events between calls, for state resolution's thousands of
// checks. PowerLevels is the effective m.room.power_levels content, defaults
// and version 12 creators included, for the rules and for the client API.
//
// Behaviour differences between room versions come from the pdu.RoomVersion
// flags, never from the version string. The package is pure: no I/O, no
// clock, no mutable globals. It assumes the events were produced by
// pdu.ParseEvent or pdu.ProtoEvent.Build, and that their signatures were
// verified before (Check only looks at which servers signed).
//
// Where the spec is vague this package follows Synapse; each such place says
// so in a comment.
package auth
