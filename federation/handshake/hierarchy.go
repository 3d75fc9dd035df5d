package handshake

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/myelin-chat/myelin/roomserver"
)

// Hierarchy asks the first of servers that answers about a space room it
// holds (federation /hierarchy): the room's entry and its children's.
// Entries of other rooms than asked, or without a room ID, are dropped.
func (h *Handshaker) Hierarchy(ctx context.Context, roomID string, servers []string, suggestedOnly bool) (*roomserver.SpaceRoom, []roomserver.SpaceRoom, error) {
	path := "/_matrix/federation/v1/hierarchy/" + url.PathEscape(roomID) + "?" + url.Values{"suggested_only": {fmt.Sprint(suggestedOnly)}}.Encode()
	var room *roomserver.SpaceRoom
	var children []roomserver.SpaceRoom
	err := h.each("hierarchy", servers, func(server string) error {
		var resp struct {
			Room     *roomserver.SpaceRoom  `json:"room"`
			Children []roomserver.SpaceRoom `json:"children"`
		}
		if err := h.fed.DoJSON(ctx, http.MethodGet, server, path, nil, &resp); err != nil {
			return err
		}
		if resp.Room == nil || resp.Room.RoomID != roomID {
			return fmt.Errorf("%s described another room than %s", server, roomID)
		}
		room = resp.Room
		if room.ChildrenState == nil {
			room.ChildrenState = []roomserver.SpaceChild{}
		}
		children = children[:0]
		for _, c := range resp.Children {
			if c.RoomID != "" {
				children = append(children, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return room, children, nil
}
