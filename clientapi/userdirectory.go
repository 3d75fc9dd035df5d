package clientapi

// POST /_matrix/client/v3/user_directory/search (client-server-api "User
// directory"). A user can find:
//   - the users who share a room with them,
//   - the users joined to rooms with a public join rule or world_readable
//     history (as the spec requires),
//   - and, unless user_directory_search_all_users is off, every local
//     user (the spec's "MUST consider local users"; Synapse's
//     search_all_users).
//
// The search is a case-insensitive substring match on user IDs and display
// names. Results are ranked: a user ID or display name that starts with
// the term first, then users with a display name, then by user ID.

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
)

func (a *API) registerUserDirectory(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/user_directory/search", a.auth.Required(a.postUserDirectorySearch)).Methods(http.MethodPost)
}

// Limits of one search: the default and largest result counts, and how
// many candidate rows are read at most.
const (
	defaultDirectoryLimit = 10
	maxDirectoryLimit     = 100
	directoryCandidates   = 1000
)

type directorySearchRequest struct {
	SearchTerm *string `json:"search_term"`
	Limit      *int    `json:"limit"`
}

type directoryUser struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

func (a *API) postUserDirectorySearch(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req directorySearchRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.SearchTerm == nil {
		writeErr(w, r, httputil.MissingParam(`"search_term" is missing`))
		return
	}
	limit := defaultDirectoryLimit
	if req.Limit != nil {
		if *req.Limit < 0 {
			writeErr(w, r, httputil.InvalidParam("limit must not be negative"))
			return
		}
		limit = min(*req.Limit, maxDirectoryLimit)
	}
	results, limited, err := a.searchUsers(r.Context(), d.UserID, strings.TrimSpace(*req.SearchTerm), limit)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]any{"results": results, "limited": limited})
}

// searchUsers returns at most limit users visible to searcher that match
// term, and whether there were more.
func (a *API) searchUsers(ctx context.Context, searcher, term string, limit int) ([]directoryUser, bool, error) {
	if term == "" {
		return []directoryUser{}, false, nil
	}
	found := map[string]directoryUser{}
	lterm := strings.ToLower(term)
	matches := func(u directoryUser) bool {
		return strings.Contains(strings.ToLower(u.UserID), lterm) || strings.Contains(strings.ToLower(u.DisplayName), lterm)
	}

	rooms, err := a.visibleRoomNIDs(ctx, searcher)
	if err != nil {
		return nil, false, err
	}
	members, err := a.db.DirectoryMembers(ctx, rooms, term, directoryCandidates)
	if err != nil {
		return nil, false, err
	}
	for _, c := range members {
		var ev struct {
			Content struct {
				DisplayName string `json:"displayname"`
				AvatarURL   string `json:"avatar_url"`
			} `json:"content"`
		}
		_ = json.Unmarshal([]byte(c.MemberJSON), &ev) // a malformed field just leaves the name out
		u := directoryUser{UserID: c.UserID, DisplayName: ev.Content.DisplayName, AvatarURL: ev.Content.AvatarURL}
		if _, seen := found[u.UserID]; !seen && matches(u) {
			found[u.UserID] = u
		}
	}
	if a.cfg.UserDirectorySearchAllUsers {
		locals, err := a.db.DirectoryLocalUsers(ctx, term, directoryCandidates)
		if err != nil {
			return nil, false, err
		}
		for _, c := range locals {
			u := directoryUser{UserID: a.auth.UserID(c.UserID)}
			_ = json.Unmarshal([]byte(c.DisplayName), &u.DisplayName)
			_ = json.Unmarshal([]byte(c.AvatarURL), &u.AvatarURL)
			// The profile is the truth for a local user, over a member
			// event's per-room name.
			if matches(u) {
				found[u.UserID] = u
			}
		}
	}

	out := make([]directoryUser, 0, len(found))
	for _, u := range found {
		out = append(out, u)
	}
	rank := func(u directoryUser) int {
		switch {
		case strings.HasPrefix(strings.ToLower(u.DisplayName), lterm), strings.HasPrefix(strings.ToLower(u.UserID), "@"+lterm):
			return 0
		case u.DisplayName != "":
			return 1
		}
		return 2
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		return out[i].UserID < out[j].UserID
	})
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// visibleRoomNIDs are the rooms whose members searcher may find: those it
// has joined and those open to anyone (public join rule, world_readable
// history).
func (a *API) visibleRoomNIDs(ctx context.Context, searcher string) ([]int64, error) {
	joined, err := a.db.JoinedRoomNIDs(ctx, searcher)
	if err != nil {
		return nil, err
	}
	nids, jsons, err := a.db.OpenRoomStateJSON(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	for _, n := range joined {
		seen[n] = true
	}
	for i, js := range jsons {
		var ev struct {
			Content struct {
				JoinRule          string `json:"join_rule"`
				HistoryVisibility string `json:"history_visibility"`
			} `json:"content"`
		}
		if json.Unmarshal([]byte(js), &ev) != nil {
			continue
		}
		if ev.Content.JoinRule == "public" || ev.Content.HistoryVisibility == "world_readable" {
			if !seen[nids[i]] {
				seen[nids[i]] = true
				joined = append(joined, nids[i])
			}
		}
	}
	return joined, nil
}
