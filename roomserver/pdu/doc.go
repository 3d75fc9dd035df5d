// Package pdu implements Matrix room events (PDUs) as the room versions
// define them: the event format of versions 1 to 12, canonical JSON,
// content and reference hashes, event and room IDs, signing and
// verification, and the redaction algorithm.
//
// Spec: appendices.md (Canonical JSON, Signing JSON, Identifiers),
// server-server-api.md (PDUs, Calculating the reference hash, Adding hashes
// and signatures), rooms/v1.md … v12.md and rooms/fragments/.
//
// The package is pure: no I/O, no clock, no globals beyond constant tables.
package pdu
