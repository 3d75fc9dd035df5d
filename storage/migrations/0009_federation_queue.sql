-- The federation sender's durable outbound queue (server-server-api
-- "Transactions"): what is still to be sent to each other server, and
-- each server's retry state, so that neither a restart nor a remote's
-- outage loses an event.

-- federation_queue holds one row per PDU still to be sent to one
-- destination. pos is the event's stream position, so a destination's
-- rows are sent in the order the events entered the timeline; the event's
-- JSON is read from the events table when it is sent.
CREATE TABLE federation_queue (
	destination TEXT NOT NULL,
	pos         BIGINT NOT NULL,
	room_id     TEXT NOT NULL,
	event_id    TEXT NOT NULL,
	PRIMARY KEY (destination, pos)
);

-- federation_destinations holds the backoff of each destination that
-- failed: failures in a row, and the time (ms since the Unix epoch)
-- before which no transaction is tried. A destination that answers has no
-- row.
CREATE TABLE federation_destinations (
	destination TEXT PRIMARY KEY,
	failures    INTEGER NOT NULL,
	retry_at_ts BIGINT NOT NULL
);
