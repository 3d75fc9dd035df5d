-- A user's highlighted notifications, newest first (GET /notifications
-- with only=highlight, storage.Notifications): before, the user's
-- notifications were walked from the newest until a page of highlighted
-- ones was found, all of them when there were fewer. Only highlighted
-- notifications (mentions, keywords) have an entry.
CREATE INDEX push_notifications_highlight ON push_notifications (user_id, event_pos) WHERE highlight;
