package syncapi

// The next_batch tokens of POST /search: where the last page ended (in the
// recent order, the stream position of its last result; in rank order, how
// many results came before the next page), the order they belong to, and,
// for a token of a group, the group it continues. Opaque to clients:
// base64url of a small JSON object.

import (
	"encoding/base64"
	"encoding/json"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// maxSearchTokenLength bounds what is decoded.
const maxSearchTokenLength = 2048

type searchToken struct {
	Order string `json:"o"` // "rank" or "recent"
	// Pos is the last position seen (recent); Offset how many results
	// came before (rank).
	Pos    int64 `json:"p,omitempty"`
	Offset int   `json:"n,omitempty"`
	// GroupKey ("room_id" or "sender") and GroupValue restrict the search
	// to one group, for a group's next_batch.
	GroupKey   string `json:"g,omitempty"`
	GroupValue string `json:"v,omitempty"`
}

func (t searchToken) String() string {
	raw, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// parseSearchToken decodes a next_batch token: 400 M_INVALID_PARAM for
// anything that is not one.
func parseSearchToken(s string) (searchToken, error) {
	bad := httputil.InvalidParam("invalid next_batch token")
	if len(s) > maxSearchTokenLength {
		return searchToken{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return searchToken{}, bad
	}
	var t searchToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return searchToken{}, bad
	}
	// Pos may be below 0: backfilled history's positions are.
	if t.Order != "rank" && t.Order != "recent" || t.Offset < 0 {
		return searchToken{}, bad
	}
	switch t.GroupKey {
	case "":
		if t.GroupValue != "" {
			return searchToken{}, bad
		}
	case "room_id", "sender":
		if t.GroupValue == "" {
			return searchToken{}, bad
		}
	default:
		return searchToken{}, bad
	}
	return t, nil
}
