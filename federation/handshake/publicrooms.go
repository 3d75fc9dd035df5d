package handshake

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
)

// publicRoomsPath is the federation room directory
// (server-server public_rooms.yaml).
const publicRoomsPath = "/_matrix/federation/v1/publicRooms"

// PublicRooms asks server for a page of its published room directory, for
// GET and POST /_matrix/client/v3/publicRooms?server=: a GET without a
// filter, a POST with one. A server that does not know the POST form gets
// the GET, and the page it answers is filtered here, as Synapse does (the
// page may then be shorter than the limit).
func (h *Handshaker) PublicRooms(ctx context.Context, server string, q roomserver.PublicRoomsQuery) (*roomserver.PublicRoomsPage, error) {
	op := "listing the room directory of " + server
	filtered := q.Filter.GenericSearchTerm != "" || q.Filter.RoomTypes != nil
	var page roomserver.PublicRoomsPage
	var err error
	if filtered {
		body := map[string]any{"filter": q.Filter, "include_all_networks": q.IncludeAllNetworks}
		if q.Limit > 0 {
			body["limit"] = q.Limit
		}
		if q.Since != "" {
			body["since"] = q.Since
		}
		if q.ThirdPartyInstanceID != "" {
			body["third_party_instance_id"] = q.ThirdPartyInstanceID
		}
		err = h.fed.DoJSON(ctx, http.MethodPost, server, publicRoomsPath, body, &page)
		if err == nil || !unrecognised(err) {
			return checkedPage(op, &page, err, nil)
		}
	}
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.IncludeAllNetworks {
		v.Set("include_all_networks", "true")
	}
	if q.ThirdPartyInstanceID != "" {
		v.Set("third_party_instance_id", q.ThirdPartyInstanceID)
	}
	path := publicRoomsPath
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	page = roomserver.PublicRoomsPage{}
	err = h.fed.DoJSON(ctx, http.MethodGet, server, path, nil, &page)
	if filtered {
		return checkedPage(op, &page, err, &q.Filter)
	}
	return checkedPage(op, &page, err, nil)
}

// checkedPage turns the answer of another server into the client's: its
// entries without a room ID dropped, and those filter refuses when the
// server could not filter. The remote server's refusals reach the client
// as clientError says, except that a 401 (this server's request was not
// accepted) becomes a 403: to a client a 401 means its own access token
// is no good.
func checkedPage(op string, page *roomserver.PublicRoomsPage, err error, filter *roomserver.PublicRoomsFilter) (*roomserver.PublicRoomsPage, error) {
	if err != nil {
		if fe, ok := errors.AsType[*fedclient.Error](err); ok && fe.Status == http.StatusUnauthorized {
			return nil, httputil.Forbidden(op + ": " + fe.Destination + " refused this server's request: " + fe.Message)
		}
		return nil, clientError(op, err)
	}
	chunk := page.Chunk[:0]
	for _, r := range page.Chunk {
		if !strings.HasPrefix(r.RoomID, "!") || (filter != nil && !filter.Matches(&r)) {
			continue
		}
		chunk = append(chunk, r)
	}
	if chunk == nil {
		chunk = []roomserver.PublicRoom{}
	}
	page.Chunk = chunk
	return page, nil
}
