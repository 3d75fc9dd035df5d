package e2ee

// Key queries: POST /keys/query for clients (local users from the
// database, remote users from their servers) and POST
// /_matrix/federation/v1/user/keys/query for other servers (local users
// only).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Bounds of a query or claim.
const (
	// MaxQueryUsers bounds the users of one /keys/query or the devices of
	// one /keys/claim. Element queries every member of a room at once, so
	// it must cover large rooms.
	MaxQueryUsers = 10000
	// DefaultRemoteTimeout is the time given to other servers when the
	// request names none, the spec's recommendation; MaxRemoteTimeout
	// caps what a request may ask for.
	DefaultRemoteTimeout = 10 * time.Second
	MaxRemoteTimeout     = 30 * time.Second
	// maxRemoteServers bounds the servers one request asks at once.
	maxRemoteServers = 32
)

// QueryResult is the answer to a client's key query; other servers get
// the first three members (user_signing_keys and failures are for clients
// only).
type QueryResult struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys,omitempty"`
	Failures        map[string]Failure                    `json:"failures"`
}

// Failure says why a server could not be asked (the "failures" map).
type Failure struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func newQueryResult() *QueryResult {
	return &QueryResult{
		DeviceKeys:      map[string]map[string]json.RawMessage{},
		MasterKeys:      map[string]json.RawMessage{},
		SelfSigningKeys: map[string]json.RawMessage{},
	}
}

// RemoteTimeout turns the timeout parameter of a query or claim (ms, nil
// when absent) into the time given to other servers.
func RemoteTimeout(ms *int64) time.Duration {
	if ms == nil || *ms <= 0 {
		return DefaultRemoteTimeout
	}
	return min(time.Duration(*ms)*time.Millisecond, MaxRemoteTimeout)
}

// Query answers a client's /keys/query: requester's view of the keys of the
// users in query (user → device IDs, none meaning all).
func (s *Service) Query(ctx context.Context, requester string, query map[string][]string, timeout time.Duration) (*QueryResult, error) {
	if len(query) > MaxQueryUsers {
		return nil, httputil.InvalidParam("at most " + strconv.Itoa(MaxQueryUsers) + " users per query")
	}
	local := map[string][]string{}
	remote := map[string]map[string][]string{} // server → query
	for user, devices := range query {
		_, server, ok := splitUserID(user)
		switch {
		case !ok:
			return nil, httputil.InvalidParam(strconv.Quote(user) + " is not a user ID")
		case server == s.serverName:
			local[user] = devices
		default:
			if remote[server] == nil {
				remote[server] = map[string][]string{}
			}
			remote[server][user] = devices
		}
	}
	cached, err := s.useCache(ctx, local, remote)
	if err != nil {
		return nil, err
	}
	res, err := s.queryLocal(ctx, requester, local, true)
	if err != nil {
		return nil, err
	}
	for _, u := range cached {
		if res.DeviceKeys[u] == nil {
			res.DeviceKeys[u] = map[string]json.RawMessage{}
		}
	}
	res.Failures = map[string]Failure{}
	if len(remote) > 0 {
		s.queryRemote(ctx, requester, remote, timeout, res)
	}
	return res, nil
}

// useCache moves from remote to local the remote users whose cached device
// list is complete and kept up to date (they share a room with one of our
// users, so their server sends updates), and returns them; the others stay
// to be asked of their servers, as Synapse does, and the lists of those
// who share a room are fetched in the background for the next query.
func (s *Service) useCache(ctx context.Context, local map[string][]string, remote map[string]map[string][]string) ([]string, error) {
	var users []string
	for _, q := range remote {
		for u := range q {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return nil, nil
	}
	states, err := s.db.RemoteDeviceListStates(ctx, users, s.serverName)
	if err != nil {
		return nil, err
	}
	var cached, untracked []string
	for server, q := range remote {
		for u, devices := range q {
			st := states[u]
			switch {
			case st.Cached && st.SharesRoom:
				local[u] = devices
				delete(q, u)
				cached = append(cached, u)
			case st.SharesRoom:
				s.resyncs.request(u)
			case st.Cached:
				// No longer sharing a room, so no longer told of changes:
				// the list must be fetched again if they share one again.
				untracked = append(untracked, u)
			}
		}
		if len(q) == 0 {
			delete(remote, server)
		}
	}
	if len(untracked) > 0 {
		err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, u := range untracked {
				if err := tx.MarkRemoteDeviceListStale(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return cached, nil
}

// QueryLocal answers another server's /user/keys/query: the keys of the
// local users in query, with the signatures every user may see and without
// device names (as Synapse, which hides them from other servers by
// default). Users of other servers are ignored.
func (s *Service) QueryLocal(ctx context.Context, query map[string][]string) (*QueryResult, error) {
	if len(query) > MaxQueryUsers {
		return nil, httputil.InvalidParam("at most " + strconv.Itoa(MaxQueryUsers) + " users per query")
	}
	local := map[string][]string{}
	for user, devices := range query {
		if _, ok := s.isLocal(user); ok {
			local[user] = devices
		}
	}
	return s.queryLocal(ctx, "", local, false)
}

// queryLocal reads the keys of local users as requester sees them ("" for
// another server).
func (s *Service) queryLocal(ctx context.Context, requester string, query map[string][]string, withNames bool) (*QueryResult, error) {
	res := newQueryResult()
	if len(query) == 0 {
		return res, nil
	}
	users := make([]string, 0, len(query))
	var localparts []string
	for u := range query {
		users = append(users, u)
		if lp, ok := s.isLocal(u); ok {
			localparts = append(localparts, lp)
			// Every local user asked about gets an entry, empty when they
			// have no device with keys.
			res.DeviceKeys[u] = map[string]json.RawMessage{}
		}
	}
	slices.Sort(users)
	keys, err := s.db.DeviceKeysOfUsers(ctx, users)
	if err != nil {
		return nil, err
	}
	cross, err := s.db.CrossSigningKeysOfUsers(ctx, users)
	if err != nil {
		return nil, err
	}
	sigs, err := s.db.KeySignaturesOfUsers(ctx, users)
	if err != nil {
		return nil, err
	}
	var names map[string]map[string]string
	if withNames && len(localparts) > 0 {
		if names, err = s.db.DeviceDisplayNames(ctx, localparts); err != nil {
			return nil, err
		}
	}
	// Uploaded signatures by target; who may see which is decided below.
	byTarget := map[[2]string][]storage.KeySignature{}
	for _, sg := range sigs {
		k := [2]string{sg.TargetUserID, sg.TargetKeyID}
		byTarget[k] = append(byTarget[k], sg)
	}
	for _, dk := range keys {
		want := query[dk.UserID]
		if len(want) > 0 && !slices.Contains(want, dk.DeviceID) {
			continue
		}
		// A device's keys are signed by its own user's self-signing key;
		// no one else's signature of a device is shown.
		visible := onlyBy(byTarget[[2]string{dk.UserID, dk.DeviceID}], dk.UserID, "")
		var unsigned map[string]any
		if lp, ok := s.isLocal(dk.UserID); ok {
			if name, ok := names[lp][dk.DeviceID]; ok {
				unsigned = map[string]any{"device_display_name": name}
			}
		} else if withNames && dk.DisplayName != nil {
			unsigned = map[string]any{"device_display_name": *dk.DisplayName}
		}
		if res.DeviceKeys[dk.UserID] == nil {
			res.DeviceKeys[dk.UserID] = map[string]json.RawMessage{}
		}
		res.DeviceKeys[dk.UserID][dk.DeviceID] = decorate(dk.KeyJSON, visible, unsigned)
	}
	for user, ks := range cross {
		if k, ok := ks[storage.MasterKey]; ok {
			// The master key's signatures: by its owner's devices, which
			// everyone sees, and by others' user-signing keys, which only
			// their signer sees.
			visible := onlyBy(byTarget[[2]string{user, k.PublicKey}], user, requester)
			res.MasterKeys[user] = decorate(k.KeyJSON, visible, nil)
		}
		if k, ok := ks[storage.SelfSigningKey]; ok {
			res.SelfSigningKeys[user] = k.KeyJSON
		}
		if k, ok := ks[storage.UserSigningKey]; ok && requester == user {
			if res.UserSigningKeys == nil {
				res.UserSigningKeys = map[string]json.RawMessage{}
			}
			res.UserSigningKeys[user] = k.KeyJSON
		}
	}
	return res, nil
}

// onlyBy keeps the signatures made by owner or by requester (when not "").
func onlyBy(sigs []storage.KeySignature, owner, requester string) []storage.KeySignature {
	var out []storage.KeySignature
	for _, sg := range sigs {
		if sg.SignerUserID == owner || (requester != "" && sg.SignerUserID == requester) {
			out = append(out, sg)
		}
	}
	return out
}

// remoteQueryResponse is the answer of another server's /user/keys/query.
type remoteQueryResponse struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
}

// queryRemote asks each server for its users' keys, all at once, within
// timeout, and merges what comes back into res; a server that fails is
// listed in res.Failures.
func (s *Service) queryRemote(ctx context.Context, requester string, remote map[string]map[string][]string, timeout time.Duration, res *QueryResult) {
	var mu sync.Mutex
	failures := forEachServer(ctx, s, remote, timeout, func(ctx context.Context, server string, q map[string][]string) error {
		var resp remoteQueryResponse
		err := s.fed.DoJSON(ctx, http.MethodPost, server, "/_matrix/federation/v1/user/keys/query",
			map[string]any{"device_keys": q}, &resp)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for user, devices := range resp.DeviceKeys {
			if _, asked := q[user]; !asked {
				continue // a server answers for the users asked about only
			}
			out := map[string]json.RawMessage{}
			for id, k := range devices {
				if keyOwnedBy(k, user, id) {
					out[id] = k
				}
			}
			res.DeviceKeys[user] = out
		}
		for user, k := range resp.MasterKeys {
			if _, asked := q[user]; asked && keyOwnedBy(k, user, "") {
				res.MasterKeys[user] = k
			}
		}
		for user, k := range resp.SelfSigningKeys {
			if _, asked := q[user]; asked && keyOwnedBy(k, user, "") {
				res.SelfSigningKeys[user] = k
			}
		}
		return nil
	})
	for server, f := range failures {
		res.Failures[server] = f
	}
	s.addOwnSignaturesOfRemoteKeys(ctx, requester, res)
}

// keyOwnedBy reports whether a key object names user (and, for device
// keys, device) as its owner: another server's answer is not trusted to
// speak for users that are not its own.
func keyOwnedBy(k json.RawMessage, user, device string) bool {
	var o struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
	}
	if json.Unmarshal(k, &o) != nil || o.UserID != user {
		return false
	}
	return device == "" || o.DeviceID == device
}

// addOwnSignaturesOfRemoteKeys merges into the remote master keys of res the
// signatures requester uploaded of them (with its user-signing key): the
// other server never received those.
func (s *Service) addOwnSignaturesOfRemoteKeys(ctx context.Context, requester string, res *QueryResult) {
	var users []string
	for u := range res.MasterKeys {
		if _, local := s.isLocal(u); !local {
			users = append(users, u)
		}
	}
	if len(users) == 0 || requester == "" {
		return
	}
	sigs, err := s.db.KeySignaturesOfUsers(ctx, users)
	if err != nil {
		s.logger.Warn("signatures of remote master keys", "err", err)
		return
	}
	byUser := map[string][]storage.KeySignature{}
	for _, sg := range sigs {
		if sg.SignerUserID == requester {
			byUser[sg.TargetUserID] = append(byUser[sg.TargetUserID], sg)
		}
	}
	for user, ss := range byUser {
		pub := masterPublicKey(res.MasterKeys[user])
		var mine []storage.KeySignature
		for _, sg := range ss {
			if sg.TargetKeyID == pub {
				mine = append(mine, sg)
			}
		}
		if len(mine) > 0 {
			res.MasterKeys[user] = decorate(res.MasterKeys[user], mine, nil)
		}
	}
}

// masterPublicKey returns the public key of a cross-signing key object, ""
// if it has not exactly one.
func masterPublicKey(k json.RawMessage) string {
	var o struct {
		Keys map[string]string `json:"keys"`
	}
	if json.Unmarshal(k, &o) != nil || len(o.Keys) != 1 {
		return ""
	}
	for _, v := range o.Keys {
		return v
	}
	return ""
}

// forEachServer runs ask for each server's part of a request, at most
// maxRemoteServers at once, all within timeout, and returns the failures.
func forEachServer[Q any](ctx context.Context, s *Service, perServer map[string]Q, timeout time.Duration, ask func(ctx context.Context, server string, q Q) error) map[string]Failure {
	failures := map[string]Failure{}
	if len(perServer) == 0 {
		return failures
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxRemoteServers)
	)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for server, q := range perServer {
		if s.fed == nil {
			failures[server] = Failure{Status: http.StatusServiceUnavailable, Message: "federation is not available"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				mu.Lock()
				failures[server] = Failure{Status: http.StatusGatewayTimeout, Message: "no answer in time"}
				mu.Unlock()
				return
			}
			if err := ask(ctx, server, q); err != nil {
				f := Failure{Status: http.StatusServiceUnavailable, Message: err.Error()}
				if fe, ok := errors.AsType[*fedclient.Error](err); ok {
					f.Status = fe.Status
				}
				s.logger.Debug("key request to another server failed", "server", server, "err", err)
				mu.Lock()
				failures[server] = f
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failures
}
