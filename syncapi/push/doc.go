// Package push is the server side of the push module (client-server-api
// "Push Notifications" and the Push Gateway API): the notifier that
// evaluates every new room event against the push rules of each local
// member, records their notifications (the unread counts /sync returns and
// GET /notifications lists), and delivers pushes to the members' push
// gateways.
//
// It is a durable consumer of the roomserver's output stream, like the
// federation sender: a burst of events is evaluated in order and their
// notifications and the pushes for them are committed in one transaction
// (storage.RecordPushes) before the bus messages are acknowledged, so a
// crash loses nothing and a redelivery doubles nothing. Pushes wait in push_queue; one worker per pusher sends them in
// order, backs off exponentially after a failure (stored, so a restart
// keeps it), drops a push it cannot deliver for a day, and deletes the
// pusher when the gateway rejects its pushkey.
//
// It lives under syncapi because what it produces is read state, which
// /sync serves: the unread counts follow the receipts syncapi stores (they
// mark notifications read in the receipt's transaction), and /sync waits
// for the notifier to reach the events it returns (Progress), so that an
// event and its count arrive in the same response, as the spec requires.
// The client API's /pushrules, /pushers and /notifications need nothing
// from it: they work on storage and internal/pushrules.
//
// What makes a room of 10,000 local members cheap: compiled rulesets are
// cached per user and shared between users on the same rules
// (internal/pushrules), the room's members and power levels are cached
// while its state does not change, the event is parsed once, and the
// notifications are written with multi-row inserts.
package push
