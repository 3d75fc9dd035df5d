package federation

// The notary endpoints (server-server-api "Querying Keys Through Another
// Server"): GET /_matrix/key/v2/query/{serverName} and POST
// /_matrix/key/v2/query answer with other servers' key responses, as
// those servers signed them, counter-signed by this server. Like the key
// endpoint they need no request signature.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// notaryParallelism bounds the servers one POST query fetches from at
// once; the request's deadline bounds the whole.
const notaryParallelism = 8

type keyQueryResponse struct {
	ServerKeys []json.RawMessage `json:"server_keys"`
}

// getKeyQuery implements GET /_matrix/key/v2/query/{serverName}.
func (a *API) getKeyQuery(w http.ResponseWriter, r *http.Request) {
	serverName := httputil.PathVar(r, "serverName")
	if err := config.ValidServerName(serverName); err != nil {
		httputil.WriteError(w, r, httputil.InvalidParam("serverName is not a server name: "+err.Error()))
		return
	}
	var minValid int64
	if v := r.URL.Query().Get("minimum_valid_until_ts"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam("minimum_valid_until_ts must be a timestamp in milliseconds"))
			return
		}
		minValid = n
	}
	resp := keyQueryResponse{ServerKeys: []json.RawMessage{}}
	signed, err := a.notarise(r.Context(), serverName, nil, minValid)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if signed != nil {
		resp.ServerKeys = append(resp.ServerKeys, signed)
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// keyQueryRequest is the body of POST /_matrix/key/v2/query.
type keyQueryRequest struct {
	ServerKeys map[string]map[string]struct {
		MinimumValidUntilTS *int64 `json:"minimum_valid_until_ts"`
	} `json:"server_keys"`
}

// postKeyQuery implements POST /_matrix/key/v2/query. Servers that cannot
// be reached and of which nothing is kept are left out, as the spec says;
// so are invalid server names.
func (a *API) postKeyQuery(w http.ResponseWriter, r *http.Request) {
	var req keyQueryRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.ServerKeys == nil {
		httputil.WriteError(w, r, httputil.BadJSON("server_keys is required"))
		return
	}
	names := make([]string, 0, len(req.ServerKeys))
	for name := range req.ServerKeys {
		names = append(names, name)
	}
	slices.Sort(names) // a stable order in the answer
	results := make([]json.RawMessage, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, notaryParallelism)
	var wg sync.WaitGroup
	for i, name := range names {
		if config.ValidServerName(name) != nil {
			continue
		}
		var keyIDs []string
		var minValid int64
		for keyID, criteria := range req.ServerKeys[name] {
			keyIDs = append(keyIDs, keyID)
			if criteria.MinimumValidUntilTS != nil {
				minValid = max(minValid, *criteria.MinimumValidUntilTS)
			}
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], errs[i] = a.notarise(r.Context(), name, keyIDs, minValid)
		})
	}
	wg.Wait()
	resp := keyQueryResponse{ServerKeys: []json.RawMessage{}}
	for i := range names {
		if errs[i] != nil {
			if r.Context().Err() != nil {
				httputil.WriteError(w, r, errs[i])
				return
			}
			httputil.Logger(r.Context()).WarnContext(r.Context(), "notary query", "server", names[i], "err", errs[i])
			continue
		}
		if results[i] != nil {
			resp.ServerKeys = append(resp.ServerKeys, results[i])
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// notarise returns serverName's key response signed by this server too,
// or nil when there is none. For this server's own name it is our own key
// response (which we signed already).
func (a *API) notarise(ctx context.Context, serverName string, keyIDs []string, minValid int64) (json.RawMessage, error) {
	if serverName == a.cfg.ServerName {
		return a.ServerKeys()
	}
	raw, err := a.serverKeys.Query(ctx, serverName, keyIDs, minValid)
	if err != nil || raw == nil {
		return nil, err
	}
	keyID, priv := a.keys.Current()
	signed, err := pdu.SignJSON(raw, a.cfg.ServerName, keyID, priv)
	if err != nil {
		// Kept responses passed the same canonicalisation when checked.
		return nil, err
	}
	return signed, nil
}
