package clientapi

// Identifier checks for the room endpoints (appendices "Identifier
// Grammar"): what a client may put in a path or a body where a user ID, room
// ID or room alias is expected.

import (
	"strings"
	"unicode/utf8"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
)

// maxIDBytes is the appendices' limit on user IDs, room IDs and aliases.
const maxIDBytes = 255

// checkUserID accepts a user ID as the appendices define it for IDs that
// may already exist anywhere in the federation: "@", a localpart of any
// characters but ':' and NUL (the historical grammar every server must
// still accept), ":", a valid server name, at most 255 bytes. The error is
// 400 M_INVALID_PARAM, as Synapse answers for an invalid user ID.
func checkUserID(id string) error {
	if len(id) > maxIDBytes || !strings.HasPrefix(id, "@") || !utf8.ValidString(id) {
		return httputil.InvalidParam("invalid user ID: " + quoteID(id))
	}
	local, server, ok := strings.Cut(id[1:], ":")
	if !ok || local == "" || strings.IndexByte(local, 0) >= 0 || config.ValidServerName(server) != nil {
		return httputil.InvalidParam("invalid user ID: " + quoteID(id))
	}
	return nil
}

// checkRoomID accepts a room ID: "!" and an opaque part without NUL, at most
// 255 bytes. The opaque part has a ":domain" before room version 12 and none
// from it, so the domain is not required; the error is 400 M_INVALID_PARAM.
func checkRoomID(id string) error {
	if len(id) < 2 || len(id) > maxIDBytes || id[0] != '!' || !utf8.ValidString(id) || strings.IndexByte(id, 0) >= 0 {
		return httputil.InvalidParam("invalid room ID: " + quoteID(id))
	}
	return nil
}

// parseAlias splits a room alias "#localpart:server" and checks it: a
// localpart of any characters but ':' and NUL, a valid server name, at most
// 255 bytes. The error is 400 M_INVALID_PARAM ("Room alias invalid" in the
// spec's examples).
func parseAlias(alias string) (localpart, server string, err error) {
	if len(alias) > maxIDBytes || !strings.HasPrefix(alias, "#") || !utf8.ValidString(alias) {
		return "", "", httputil.InvalidParam("invalid room alias: " + quoteID(alias))
	}
	localpart, server, ok := strings.Cut(alias[1:], ":")
	if !ok || localpart == "" || strings.IndexByte(localpart, 0) >= 0 || config.ValidServerName(server) != nil {
		return "", "", httputil.InvalidParam("invalid room alias: " + quoteID(alias))
	}
	return localpart, server, nil
}

// quoteID quotes an identifier for an error message, shortened so that a
// huge bad input does not come back in full.
func quoteID(id string) string {
	if len(id) > 300 {
		id = id[:300] + "..."
	}
	return strings.ToValidUTF8(`"`+id+`"`, "\uFFFD")
}
