// Package clientapi serves the Matrix Client-Server API
// (content/client-server-api in the spec), one file per spec module.
//
// Implemented so far: the server's supported versions (GET
// /_matrix/client/versions, "API Standards") and client server discovery
// (GET /.well-known/matrix/client, "Server Discovery"). Every endpoint under
// /_matrix/client/v3 is also served under the legacy /_matrix/client/r0
// prefix, as Synapse does, because older clients and bridges still use it
// (see legacy.go).
package clientapi
