package handshake

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// QueryAlias asks the alias's server which room it names and which
// servers are in that room (server-server-api "Querying for
// information": /query/directory).
func (h *Handshaker) QueryAlias(ctx context.Context, alias string) (roomID string, servers []string, err error) {
	_, server, ok := strings.Cut(alias, ":")
	if !ok || !strings.HasPrefix(alias, "#") {
		return "", nil, fmt.Errorf("%q is not a room alias", alias)
	}
	var resp struct {
		RoomID  string   `json:"room_id"`
		Servers []string `json:"servers"`
	}
	path := "/_matrix/federation/v1/query/directory?" + url.Values{"room_alias": {alias}}.Encode()
	if err := h.fed.DoJSON(ctx, http.MethodGet, server, path, nil, &resp); err != nil {
		return "", nil, clientError("resolving "+alias, err)
	}
	if !strings.HasPrefix(resp.RoomID, "!") {
		return "", nil, clientError("resolving "+alias, fmt.Errorf("%s answered with %q, not a room ID", server, resp.RoomID))
	}
	return resp.RoomID, resp.Servers, nil
}
