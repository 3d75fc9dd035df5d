package syncapi

// Per-user data an incremental sync would otherwise read on every call:
// the user's memberships and ignored users. An entry is used only while
// the database says it is current (storage.SyncPositions: no member event
// or account data of the user since it was read), so it never serves stale
// data; it only saves the queries of the syncs that find nothing changed,
// which are most of them.

import (
	"context"
	"slices"
	"sync"

	"github.com/myelin-chat/myelin/storage"
)

const maxCachedUsers = 100000

type userCache struct {
	mu    sync.Mutex
	users map[string]*cachedUser
}

type cachedUser struct {
	memberships []storage.SyncMembership // StateNID cleared: it goes stale
	memberPos   int64                    // the newest member event they reflect
	haveMembers bool
	ignored     map[string]bool
	ignoredPos  int64 // the account data position they reflect
	haveIgnored bool
}

func newUserCache() *userCache { return &userCache{users: map[string]*cachedUser{}} }

func (c *userCache) get(userID string) cachedUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u := c.users[userID]; u != nil {
		return *u
	}
	return cachedUser{}
}

func (c *userCache) update(userID string, f func(u *cachedUser)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[userID]
	if u == nil {
		makeRoom(c.users, maxCachedUsers)
		u = &cachedUser{}
		c.users[userID] = u
	}
	f(u)
}

// memberships returns the user's memberships: from the cache when no
// member event of theirs came after it was filled and fresh is false,
// else from the database.
func (a *API) memberships(ctx context.Context, userID string, p storage.SyncPositions, fresh bool) ([]storage.SyncMembership, error) {
	if !fresh {
		if u := a.users.get(userID); u.haveMembers && p.Membership <= u.memberPos {
			return slices.Clone(u.memberships), nil
		}
	}
	ms, err := a.db.SyncMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	var newest int64
	cached := make([]storage.SyncMembership, len(ms))
	for i, m := range ms {
		newest = max(newest, m.EventPos)
		m.StateNID = 0
		cached[i] = m
	}
	a.users.update(userID, func(u *cachedUser) {
		u.memberships, u.memberPos, u.haveMembers = cached, newest, true
	})
	return ms, nil
}

// ignoredUsersAt returns the users userID ignores, from the cache when
// their account data did not change since it was filled.
func (a *API) ignoredUsersAt(ctx context.Context, userID string, p storage.SyncPositions) (map[string]bool, error) {
	if u := a.users.get(userID); u.haveIgnored && p.AccountData <= u.ignoredPos {
		return u.ignored, nil
	}
	ignored, err := a.ignoredUsers(ctx, userID)
	if err != nil {
		return nil, err
	}
	a.users.update(userID, func(u *cachedUser) {
		u.ignored, u.ignoredPos, u.haveIgnored = ignored, p.AccountData, true
	})
	return ignored, nil
}
