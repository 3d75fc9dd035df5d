-- The tokens that name a refresh token, found without reading every token
-- of the server: storage.ClearSuperseded, on every /refresh and on the
-- first use of every refreshed access token, scanned access_tokens twice
-- and refresh_tokens once, in a write transaction. Only the tokens that
-- name one have an entry: logins without refresh tokens add none. The
-- statements repeat "<> 0" (SQLite uses a partial index only when the
-- query states its condition).
CREATE INDEX access_tokens_refresh ON access_tokens (refresh_id) WHERE refresh_id <> 0;
CREATE INDEX access_tokens_supersedes ON access_tokens (supersedes_refresh_id) WHERE supersedes_refresh_id <> 0;
CREATE INDEX refresh_tokens_supersedes ON refresh_tokens (supersedes_refresh_id) WHERE supersedes_refresh_id <> 0;
