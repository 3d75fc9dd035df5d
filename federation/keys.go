package federation

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// serverKeys is the body of GET /_matrix/key/v2/server before signing
// (data/api/server-server/definitions/keys.yaml).
type serverKeys struct {
	ServerName    string                  `json:"server_name"`
	VerifyKeys    map[string]verifyKey    `json:"verify_keys"`
	OldVerifyKeys map[string]oldVerifyKey `json:"old_verify_keys"`
	ValidUntilTS  int64                   `json:"valid_until_ts"`
}

type verifyKey struct {
	Key string `json:"key"` // unpadded base64
}

type oldVerifyKey struct {
	Key       string `json:"key"`
	ExpiredTS int64  `json:"expired_ts"`
}

func (a *API) registerKeys(r *mux.Router) {
	r.HandleFunc("/_matrix/key/v2/server", a.getServerKeys).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/key/v2/query/{serverName}", a.getKeyQuery).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/key/v2/query", a.postKeyQuery).Methods(http.MethodPost)
}

// getServerKeys implements GET /_matrix/key/v2/server.
func (a *API) getServerKeys(w http.ResponseWriter, r *http.Request) {
	body, err := a.ServerKeys()
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteRawJSON(w, http.StatusOK, body)
}

// ServerKeys returns this server's signed key response: every verify key
// (the ring has one current key), the old verify keys with the time they
// expired, valid_until_ts = now + the key validity, signed with the current
// key as the spec's "Signing JSON" describes. The bytes are canonical JSON.
func (a *API) ServerKeys() ([]byte, error) {
	keyID, priv := a.keys.Current()
	resp := serverKeys{
		ServerName:    a.cfg.ServerName,
		VerifyKeys:    map[string]verifyKey{keyID: {Key: unpadded(priv.Public().(ed25519.PublicKey))}},
		OldVerifyKeys: map[string]oldVerifyKey{},
		ValidUntilTS:  a.now().Add(a.keyValidity).UnixMilli(),
	}
	for _, old := range a.keys.Old() {
		resp.OldVerifyKeys[old.ID] = oldVerifyKey{Key: unpadded(old.Public), ExpiredTS: old.ExpiredTS}
	}
	unsigned, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encoding the key response: %w", err)
	}
	signed, err := pdu.SignJSON(unsigned, a.cfg.ServerName, keyID, priv)
	if err != nil {
		return nil, fmt.Errorf("signing the key response with %s: %w", keyID, err)
	}
	return signed, nil
}

// unpadded is the spec's "Unpadded Base64" (appendices).
func unpadded(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }
