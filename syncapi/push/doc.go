// Package push is the server side of the push module (client-server-api
// "Push Notifications" and the Push Gateway API): the notifier that
// evaluates every new room event against the push rules of each local
// member, records their notifications (the unread counts /sync returns and
// GET /notifications lists), and delivers pushes to the members' push
// gateways.
//
// The notifier is the roomserver's Observer: it evaluates each new room
// event inside the transaction that stores it (ObserveEvents), so the
// event, its notifications and the pushes queued for it commit together,
// and /sync never sees an event without its unread count (the spec's "MUST
// appear in the same /sync response"). The rows are written with the
// event's stream position, which incremental /sync follows. Pushes wait in
// push_queue; one worker per pusher sends them in order, backs off
// exponentially after a failure (stored, so a restart keeps it), drops a
// push it cannot deliver for a day, and deletes the pusher when the
// gateway rejects its pushkey.
//
// It lives under syncapi because what it produces is read state, which
// /sync serves: the unread counts follow the receipts syncapi stores (they
// mark notifications read in the receipt's transaction). The client API's
// /pushrules, /pushers and /notifications need nothing from it: they work
// on storage and internal/pushrules.
//
// What makes a room of 10,000 local members cheap: compiled rulesets are
// cached per user and shared between users on the same rules
// (internal/pushrules), the room's members and power levels are cached
// while its state does not change, the event is parsed once, and the
// notifications are written with multi-row inserts.
package push
