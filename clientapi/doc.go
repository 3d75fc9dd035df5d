// Package clientapi serves the Matrix Client-Server API
// (content/client-server-api in the spec), one file per spec module.
// Handlers are thin: they parse and check the request, call the roomserver
// or storage once, and write the answer; the room logic lives in the
// roomserver and /sync, /messages and /context live in syncapi.
//
// Modules served: API standards (versions.go), server discovery
// (wellknown.go), registration with user-interactive auth, registration
// tokens and Synapse's shared-secret admin registration (register*.go),
// login, refresh tokens and logout (login*.go), account management
// (account*.go), devices (devices.go), profiles (profile*.go), capabilities,
// the user directory, room creation (createroom*.go), membership
// (membership.go), room state and members (rooms*.go), sending events and
// redactions, timestamp_to_event (events*.go), aliases (aliases.go), the
// public room directory (directory.go), room upgrades (upgrade*.go), and
// end-to-end encryption: keys and cross-signing (keys.go), send-to-device
// (todevice.go), key backup (keybackup.go) and MSC3814 dehydrated devices
// (dehydrated.go), whose rules live in the e2ee subpackage.
// Access tokens are checked by the clientapi/auth subpackage, which syncapi
// shares.
//
// Every endpoint under /_matrix/client/v3 is also served under the legacy
// /_matrix/client/r0 prefix, as Synapse does, because older clients and
// bridges still use it (see legacy.go).
package clientapi
