package push

// Each user's compiled push rules and ignored users, cached. An entry is
// dropped when the user's account data changes (the sync.notify wake-up
// every account data write publishes, in any process) and reloaded after
// a while anyway, since such a wake-up can be lost.

import (
	"context"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/pushrules"
)

// Bounds of the cache.
const (
	maxUsers = 200000
	userTTL  = 10 * time.Minute
)

type userCache struct {
	s     *Service
	mu    sync.Mutex
	users map[string]*userRules
	// gen counts invalidations, recent[user] is the gen of the user's last
	// one (forgotten in bulk, floor marking when): rules loaded while
	// their user was invalidated may be older than the change, so they
	// are used once but not kept.
	gen    uint64
	recent map[string]uint64
	floor  uint64
}

// userRules is one user's rules, ready to evaluate. Immutable.
type userRules struct {
	compiled *pushrules.Compiled
	ignored  map[string]bool
	loaded   time.Time
}

func newUserCache(s *Service) *userCache {
	return &userCache{s: s, users: map[string]*userRules{}, recent: map[string]uint64{}}
}

// get returns the rules of each user (in the order given), loading the
// missing ones in a few queries.
func (c *userCache) get(ctx context.Context, users []string) ([]*userRules, error) {
	out := make([]*userRules, len(users))
	now := c.s.cfg.Now()
	var missing []string
	c.mu.Lock()
	gen := c.gen
	for i, u := range users {
		if ur := c.users[u]; ur != nil && now.Sub(ur.loaded) < userTTL {
			out[i] = ur
		} else {
			missing = append(missing, u)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	data, err := c.s.cfg.DB.PushRulesOf(ctx, missing)
	if err != nil {
		return nil, err
	}
	loaded := make(map[string]*userRules, len(missing))
	for _, u := range missing {
		ad := data[u]
		ur := &userRules{compiled: c.s.compiler.Compile(pushrules.Load(ad["m.push_rules"], u), u), loaded: now}
		gjson.GetBytes(ad["m.ignored_user_list"], "ignored_users").ForEach(func(k, _ gjson.Result) bool {
			if ur.ignored == nil {
				ur.ignored = map[string]bool{}
			}
			ur.ignored[k.Str] = true
			return true
		})
		loaded[u] = ur
	}
	c.mu.Lock()
	if len(c.users)+len(loaded) > maxUsers {
		clear(c.users)
	}
	for u, ur := range loaded {
		if c.floor <= gen && c.recent[u] <= gen {
			c.users[u] = ur
		}
	}
	c.mu.Unlock()
	for i, u := range users {
		if out[i] == nil {
			out[i] = loaded[u]
		}
	}
	return out, nil
}

// invalidate drops the users' entries.
func (c *userCache) invalidate(users []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(c.recent) >= 10000 {
		clear(c.recent)
		c.floor = c.gen
	}
	for _, u := range users {
		delete(c.users, u)
		c.recent[u] = c.gen
	}
}
