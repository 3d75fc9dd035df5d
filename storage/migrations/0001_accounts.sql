-- Local user accounts (client-server-api "Account registration and
-- management"). The user ID is @localpart:server_name; the server name is
-- configuration, so only the localpart is stored.
CREATE TABLE accounts (
	localpart     TEXT PRIMARY KEY,
	-- bcrypt hash; '' for an account that cannot log in with a password.
	password_hash TEXT NOT NULL,
	is_admin      BOOLEAN NOT NULL,
	-- milliseconds since the Unix epoch
	created_ts    BIGINT NOT NULL,
	deactivated   BOOLEAN NOT NULL DEFAULT FALSE
);
