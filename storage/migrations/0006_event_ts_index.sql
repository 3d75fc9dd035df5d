-- A room's timeline by origin_server_ts, for GET
-- /v1/rooms/{roomId}/timestamp_to_event (storage.EventNearTimestamp): the
-- event closest to a time is one index lookup instead of a walk over the
-- room's timeline. stream_pos breaks ties between events of the same
-- millisecond in timeline order, within the same index scan.
CREATE INDEX events_room_ts ON events (room_nid, origin_server_ts, stream_pos);
