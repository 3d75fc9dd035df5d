// Package federation serves the Matrix Server-Server API
// (content/server-server-api.md in the spec).
//
// Implemented so far:
//   - GET /_matrix/federation/v1/version ("Server Implementation"),
//   - GET /_matrix/key/v2/server ("Publishing Keys"): the server's verify
//     keys and old verify keys, signed with its current key,
//   - GET /_matrix/key/v2/query/{serverName} and POST /_matrix/key/v2/query
//     ("Querying Keys Through Another Server"): other servers' key
//     responses, counter-signed, from the key store (serverkeys),
//   - GET /.well-known/matrix/server ("Server Discovery", delegation), also
//     served on the client listener since delegation is usually looked up
//     on port 443, where a reverse proxy forwards to the client listener,
//   - request authentication ("Request Authentication"): every other
//     /_matrix/federation/ endpoint is behind Authenticate, which checks
//     the X-Matrix signature and puts the origin in the request's context,
//   - GET /_matrix/federation/v1/query/profile and /query/directory
//     ("Querying for information"),
//   - GET /_matrix/federation/v1/event, /state, /state_ids ("Retrieving
//     events") and /event_auth ("Retrieving event authorisation
//     information"), served only to servers that may see them (events.go),
//   - GET /_matrix/federation/v1/backfill and POST /get_missing_events
//     ("Backfilling and retrieving missing events", backfill.go); these and
//     /state, /state_ids and /event_auth refuse servers the room's server
//     ACL denies ("Server Access Control Lists (ACLs)").
//
// The subpackages: fedauth signs and parses X-Matrix headers, fedclient
// finds other servers and sends them signed requests, serverkeys fetches
// and keeps other servers' keys.
package federation
