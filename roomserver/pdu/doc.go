// Package pdu implements Matrix room events (PDUs) as the room versions
// define them: the event format of versions 1 to 12, canonical JSON,
// content and reference hashes, event and room IDs, signing and
// verification, and the redaction algorithm.
//
// Spec: appendices.md (Unpadded Base64, Canonical JSON, Signing JSON,
// Identifier Grammar, Cryptographic Test Vectors), server-server-api.md
// (PDUs, Checks performed on receipt of a PDU, Signing Events),
// client-server-api "Size limits" and "Redactions", rooms/v1.md … v12.md
// and rooms/fragments/.
//
// The package is pure: no I/O, no clock, no globals beyond constant tables.
//
// Files:
//   - canonical.go: CanonicalJSON / CanonicalJSONStrict, the one JSON
//     reader for untrusted input (duplicate keys, invalid UTF-8, lone
//     surrogates and nesting deeper than MaxNestingDepth are refused).
//   - scan.go: small readers for JSON this package has canonicalized.
//   - base64.go, sign.go: unpadded Base64, SignJSON / VerifyJSON.
//   - parse.go: ParseEvent, the per-version format checks and size limits.
//   - hash.go: content hash, event signatures, RequiredSigners.
//   - redact.go: Redact and (*Event).Redacted for every version's rules.
//   - build.go: ProtoEvent.Build for local events.
//   - version.go, event.go: the room version table and Event accessors.
//
// The receive path for a PDU is: ParseEvent (format; drop on error),
// CheckReferenceLimits for pushed and backfilled events, VerifySignature
// for each of RequiredSigners (drop on error), then CheckContentHash (on
// ErrContentHashMismatch use Redacted instead of the event).
//
// Where the spec is silent this follows Synapse, and says so where it does.
package pdu
