-- A room's state events in stream order, found without reading the
-- messages between them: the state changes of a sync gap
-- (storage.SyncStateEvents, for every limited timeline of an incremental
-- /sync) and the member events of an incremental sync's window
-- (storage.SyncE2EE, device list changes, on every incremental /sync).
-- Before, both walked every event of the window (events_room_stream) and
-- read its row to find the few state events: a client back after a day
-- paid for the day's messages of all its rooms. Message events have no
-- state key and no entry.
CREATE INDEX events_room_state_stream ON events (room_nid, stream_pos) WHERE state_key_nid IS NOT NULL;
