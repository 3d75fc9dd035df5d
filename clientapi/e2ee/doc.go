// Package e2ee is the server side of end-to-end encryption
// (client-server-api "End-to-End Encryption" and "Send-to-Device
// messaging", the matching federation endpoints, and MSC3814 dehydrated
// devices): it checks the keys and signatures clients upload, stores them,
// answers key queries and claims for local users and asks other servers
// for theirs, routes to-device messages, keeps key backups, and wakes the
// /sync long-polls that have something new to tell.
//
// The server never sees a private key or plaintext; what it must get right
// is who may see what (a user-signing key only to its owner, other users'
// signatures of a master key only to their signer), that every one-time
// key is handed out once, and that nothing half-checked is stored: a
// request with one bad key stores none of its keys.
//
// clientapi's handlers and federation's both call a *Service; the HTTP
// shapes (paths, parameters) stay with them.
//
// Positions: every change /sync reports (a device list change, a to-device
// message) takes a position of the global stream
// (storage.(*Tx).NextStreamPos), so the one position in a sync token
// covers them, and a wake-up on the bus (bus.NotifySync) after the commit.
package e2ee
