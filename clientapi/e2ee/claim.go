package e2ee

// Key claims: POST /keys/claim for clients (local devices from the
// database, remote ones from their servers) and POST
// /_matrix/federation/v1/user/keys/claim for other servers.

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// ClaimResult is the answer to a client's claim: user → device →
// "<algorithm>:<key ID>" → key, and failures (other servers get the keys
// only).
type ClaimResult struct {
	OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	Failures    map[string]Failure                               `json:"failures"`
}

// Claim answers a client's /keys/claim: for each device of claims (user →
// device → algorithm), a one-time key, or the fallback key when none is
// left; devices with neither are absent.
func (s *Service) Claim(ctx context.Context, claims map[string]map[string]string, timeout time.Duration) (*ClaimResult, error) {
	local := map[string]map[string]string{}
	remote := map[string]map[string]map[string]string{} // server → claims
	n := 0
	for user, devices := range claims {
		n += len(devices)
		_, server, ok := splitUserID(user)
		switch {
		case !ok:
			return nil, httputil.InvalidParam(strconv.Quote(user) + " is not a user ID")
		case server == s.serverName:
			local[user] = devices
		default:
			if remote[server] == nil {
				remote[server] = map[string]map[string]string{}
			}
			remote[server][user] = devices
		}
	}
	if n > MaxQueryUsers {
		return nil, httputil.InvalidParam("at most " + strconv.Itoa(MaxQueryUsers) + " devices per claim")
	}
	res, err := s.claimLocal(ctx, local)
	if err != nil {
		return nil, err
	}
	res.Failures = map[string]Failure{}
	var mu sync.Mutex
	failures := forEachServer(ctx, s, remote, timeout, func(ctx context.Context, server string, q map[string]map[string]string) error {
		var resp struct {
			OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
		}
		err := s.fed.DoJSON(ctx, http.MethodPost, server, "/_matrix/federation/v1/user/keys/claim",
			map[string]any{"one_time_keys": q}, &resp)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for user, devices := range resp.OneTimeKeys {
			asked := q[user]
			if asked == nil {
				continue
			}
			for device, keys := range devices {
				if _, ok := asked[device]; !ok {
					continue
				}
				if res.OneTimeKeys[user] == nil {
					res.OneTimeKeys[user] = map[string]map[string]json.RawMessage{}
				}
				res.OneTimeKeys[user][device] = keys
			}
		}
		return nil
	})
	for server, f := range failures {
		res.Failures[server] = f
	}
	return res, nil
}

// ClaimLocal answers another server's /user/keys/claim; users of other
// servers are ignored.
func (s *Service) ClaimLocal(ctx context.Context, claims map[string]map[string]string) (*ClaimResult, error) {
	local := map[string]map[string]string{}
	n := 0
	for user, devices := range claims {
		if _, ok := s.isLocal(user); ok {
			local[user] = devices
			n += len(devices)
		}
	}
	if n > MaxQueryUsers {
		return nil, httputil.InvalidParam("at most " + strconv.Itoa(MaxQueryUsers) + " devices per claim")
	}
	return s.claimLocal(ctx, local)
}

func (s *Service) claimLocal(ctx context.Context, claims map[string]map[string]string) (*ClaimResult, error) {
	res := &ClaimResult{OneTimeKeys: map[string]map[string]map[string]json.RawMessage{}}
	var list []storage.KeyClaim
	for user, devices := range claims {
		for device, alg := range devices {
			if alg == "" {
				return nil, httputil.InvalidParam("the algorithm claimed for " + user + " " + device + " is empty")
			}
			list = append(list, storage.KeyClaim{UserID: user, DeviceID: device, Algorithm: alg})
		}
	}
	if len(list) == 0 {
		return res, nil
	}
	var got []storage.ClaimedKey
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		var err error
		got, err = tx.ClaimKeys(ctx, list)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, c := range got {
		if res.OneTimeKeys[c.UserID] == nil {
			res.OneTimeKeys[c.UserID] = map[string]map[string]json.RawMessage{}
		}
		res.OneTimeKeys[c.UserID][c.DeviceID] = map[string]json.RawMessage{c.Key.Name(): c.Key.KeyJSON}
	}
	return res, nil
}
