// Package syncapi serves what clients read: /sync and the per-user data it
// carries, and room history. It implements, from the client-server spec:
//
//   - "Syncing": GET /sync, initial and incremental, long-polling (sync.go,
//     longpoll.go, resume.go, syncbuild.go, syncroom.go); sync tokens are documented in the synctoken subpackage;
//   - "Filtering": POST/GET /user/{userId}/filter and inline filters
//     (filter.go, filterapi.go), lazy-loading room members;
//   - "Getting events for a room": GET /rooms/{roomId}/messages
//     (messages.go) and "Event context": GET /rooms/{roomId}/context/{eventId}
//     (context.go);
//   - "Room History Visibility" on every read path (visibility.go);
//   - "Relationships API" (relationsapi.go), "Querying threads in a room"
//     (threads.go) and bundled aggregations on every read path
//     (relations_bundle.go), from the tables syncapi/relations keeps;
//   - "Server Side Search" (searchapi.go) over the index of syncapi/search;
//   - "Typing Notifications" (typing.go, typingapi.go), "Receipts" and "Read
//     and unread markers" (receipts.go), "Presence" (presence.go), "Client
//     Config" account data, "Room Tagging" and "Ignoring Users"
//     (accountdata.go).
//
// Room events come from the roomserver's tables and its output stream;
// everything else this package writes itself (storage/sync*.go,
// filters.go, receipts.go, accountdata.go, presence.go). A /sync long-poll
// waits on the notifier (notifier.go), which the bus feeds (bus.go), so a
// write in any process wakes the waiters of every process within
// milliseconds, without polling the database.
//
// What keeps /sync cheap: over HTTP/1.1 a request is parked as it arrives
// and waits without a goroutine or net/http's buffers (longpoll.go,
// resume.go), the reads run on a small worker pool (workers.go), identical
// concurrent requests share one build (flight.go, and grouped resumption),
// one query says which streams changed since the token so the others are
// skipped, a user's memberships and ignored users are cached while that
// query says they are current (usercache.go), lazy-loaded members already
// sent are remembered per device (lazymembers.go), and storage runs every
// read as a cached prepared statement (storage/reader.go).
//
// End-to-end encryption's sections (to_device, device_lists and the key
// counts) are built in e2ee.go from what clientapi/e2ee stores. Unread
// notification counts come from the notifier (the push subpackage), which
// evaluates push rules on the roomserver's output; receipts mark
// notifications read (unread.go).
package syncapi
