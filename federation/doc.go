// Package federation serves the Matrix Server-Server API
// (content/server-server-api.md in the spec).
//
// Implemented so far:
//   - GET /_matrix/federation/v1/version ("Server Implementation"),
//   - GET /_matrix/key/v2/server ("Publishing Keys"): the server's verify
//     keys and old verify keys, signed with its current key,
//   - GET /.well-known/matrix/server ("Server Discovery", delegation), also
//     served on the client listener since delegation is usually looked up
//     on port 443, where a reverse proxy forwards to the client listener.
package federation
