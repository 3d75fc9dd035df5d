package serverkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// fetch gets serverName's keys from the server itself and, if that fails
// or does not give keyID valid at atTS, from the notaries (when allowed),
// storing what it gets. It runs inside a flight, once for all the callers
// waiting on it.
func (s *Store) fetch(ctx context.Context, serverName, keyID string, atTS int64, notaries bool) error {
	if !s.takeFetchToken(serverName) {
		return fmt.Errorf("fetched too often lately; next try within %v", fetchRefill)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()

	directErr := s.fetchDirect(ctx, serverName)
	if directErr == nil {
		if _, ok := s.cached(serverName, keyID, atTS); ok {
			return nil
		}
	} else {
		s.logger.Debug("cannot fetch keys directly", "server", serverName, "err", directErr)
	}
	if !notaries || len(s.notaries) == 0 {
		return directErr
	}
	errs := []error{directErr}
	for _, notary := range s.notaries {
		if notary == serverName || notary == s.serverName {
			continue
		}
		err := s.fetchFromNotary(ctx, notary, serverName, keyID, atTS)
		if err == nil {
			if _, ok := s.cached(serverName, keyID, atTS); ok {
				return nil
			}
			continue
		}
		s.logger.Debug("cannot fetch keys through notary", "server", serverName, "notary", notary, "err", err)
		errs = append(errs, fmt.Errorf("through %s: %w", notary, err))
	}
	if directErr == nil && len(errs) == 1 {
		return nil // the fetches worked; the key is just not there
	}
	return errors.Join(errs...)
}

// fetchDirect asks the server for its keys.
func (s *Store) fetchDirect(ctx context.Context, serverName string) error {
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	resp, err := s.client.Do(ctx, fedclient.Request{
		Method: http.MethodGet, Destination: serverName, Path: "/_matrix/key/v2/server",
		MaxResponseBytes: maxDirectResponse,
	})
	if err != nil {
		return err
	}
	c, err := checkResponse(resp.Body, serverName, s.now())
	if err != nil {
		return err
	}
	return s.save(ctx, c, true)
}

// notaryQuery is the body of POST /_matrix/key/v2/query.
type notaryQuery struct {
	ServerKeys map[string]map[string]notaryCriteria `json:"server_keys"`
}

type notaryCriteria struct {
	MinimumValidUntilTS int64 `json:"minimum_valid_until_ts,omitempty"`
}

// fetchFromNotary asks notary for serverName's keys: keyID, valid at atTS
// (when not AnyTime; else the notary uses the current time). Each response
// must be signed by serverName (checked as a direct response is) and by
// the notary, with a key of the notary's fetched from the notary itself.
func (s *Store) fetchFromNotary(ctx context.Context, notary, serverName, keyID string, atTS int64) error {
	body, err := json.Marshal(notaryQuery{ServerKeys: map[string]map[string]notaryCriteria{
		serverName: {keyID: {MinimumValidUntilTS: max(atTS, 0)}},
	}})
	if err != nil {
		return err
	}
	resp, err := s.client.Do(ctx, fedclient.Request{
		Method: http.MethodPost, Destination: notary, Path: "/_matrix/key/v2/query",
		Body: body, MaxResponseBytes: maxNotaryResponse,
	})
	if err != nil {
		return err
	}
	var answer struct {
		ServerKeys []json.RawMessage `json:"server_keys"`
	}
	if err := json.Unmarshal(resp.Body, &answer); err != nil {
		return fmt.Errorf("the answer is not the JSON expected: %v", err)
	}
	var errs []error
	saved := 0
	for _, raw := range answer.ServerKeys {
		var named struct {
			ServerName string `json:"server_name"`
		}
		if json.Unmarshal(raw, &named) != nil || named.ServerName != serverName {
			continue // not asked for; notaries may return more
		}
		c, err := checkResponse(raw, serverName, s.now())
		if err == nil {
			err = s.checkNotarySignature(ctx, notary, raw)
		}
		if err == nil {
			err = s.save(ctx, c, false)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		saved++
	}
	if saved == 0 {
		if len(errs) == 0 {
			return fmt.Errorf("the notary has no keys of %s", serverName)
		}
		return errors.Join(errs...)
	}
	return nil
}

// checkNotarySignature checks that the notary signed raw with a key it
// publishes itself: at least one of its signatures is by a key we can get
// from it, and every such signature verifies.
func (s *Store) checkNotarySignature(ctx context.Context, notary string, raw []byte) error {
	var r keyResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	verified := false
	var lastErr error
	for keyID := range r.Signatures[notary] {
		pub, err := s.lookup(ctx, notary, keyID, s.now().UnixMilli(), false)
		if err != nil {
			lastErr = err
			continue
		}
		if err := pdu.VerifyJSON(raw, notary, keyID, pub); err != nil {
			return fmt.Errorf("notary %s signature by %s: %w", notary, keyID, err)
		}
		verified = true
	}
	if !verified {
		if lastErr != nil {
			return fmt.Errorf("%w %s: %w", errNotSignedByNotary, notary, lastErr)
		}
		return fmt.Errorf("%w %s", errNotSignedByNotary, notary)
	}
	return nil
}

// save stores a checked response and refreshes memory from the database,
// so that memory follows the database's merging rules.
func (s *Store) save(ctx context.Context, c *checked, direct bool) error {
	resp := storage.ServerKeyResponse{ServerName: c.serverName, JSON: c.raw, ValidUntilTS: c.validUntilTS, FetchedTS: s.now().UnixMilli()}
	if err := s.db.StoreServerKeys(ctx, resp, direct, c.keys); err != nil {
		return err
	}
	return s.reload(ctx, c.serverName)
}
