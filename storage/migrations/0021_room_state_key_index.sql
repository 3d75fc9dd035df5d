-- A room's events of given state keys, found without reading the room's
-- other events: the history visibility and membership changes that every
-- /sync, /messages page and search reads (storage.SyncVisibilityEvents),
-- the state an event replaced, a user's membership at a token. Before, they
-- walked every event of the room (events_room_stream) or every room's
-- events of the key (events_state_key_stream, which stays for reads across
-- rooms). Message events have no state key and no entry.
CREATE INDEX events_room_state_key ON events (room_nid, state_key_nid, stream_pos) WHERE state_key_nid IS NOT NULL;
