package serverkeys

import (
	"context"
	"errors"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/storage"
)

// Query returns serverName's signed key response for this server to serve
// as a notary (server-server-api "Querying Keys Through Another Server"),
// or nil when it has none. keyIDs are the keys asked for (none: any) and
// minValidUntil the validity asked for (0: now, as the spec says).
//
// The kept response is served while it is fresh: valid until
// minValidUntil, listing every key asked for, and in the first half of its
// lifetime (the spec: "Intermediate notary servers should cache a response
// for half of its lifetime"). Otherwise the server is asked again directly
// (never through other notaries); if it cannot answer, the last response
// is served anyway, "so that the signatures of old events can still be
// checked". The error is a fault of this server, never of the remote.
// This server's own keys are not answered here.
func (s *Store) Query(ctx context.Context, serverName string, keyIDs []string, minValidUntil int64) ([]byte, error) {
	if serverName == s.serverName || config.ValidServerName(serverName) != nil {
		return nil, nil
	}
	now := s.now().UnixMilli()
	if minValidUntil <= 0 {
		minValidUntil = now
	}
	kept, err := s.db.ServerKeyResponse(ctx, serverName)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if kept != nil && fresh(kept, keyIDs, minValidUntil, now) {
		return kept.JSON, nil
	}
	_, err = s.flights.Do(ctx, flightKey{serverName, false}, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.fetch(ctx, serverName, "", AnyTime, false)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.logger.Debug("notary: cannot refresh keys; serving what is kept", "server", serverName, "err", err, "kept", kept != nil)
		if kept == nil {
			return nil, nil
		}
		return kept.JSON, nil
	}
	if kept, err = s.db.ServerKeyResponse(ctx, serverName); err != nil {
		return nil, err
	}
	return kept.JSON, nil
}

// fresh reports whether a kept response may be served as it is.
func fresh(r *storage.ServerKeyResponse, keyIDs []string, minValidUntil, now int64) bool {
	if r.ValidUntilTS < minValidUntil || now >= r.FetchedTS+(r.ValidUntilTS-r.FetchedTS)/2 {
		return false
	}
	if len(keyIDs) == 0 {
		return true
	}
	ids, err := keyIDsOf(r.JSON)
	if err != nil {
		return false
	}
	for _, id := range keyIDs {
		if !ids[id] {
			return false
		}
	}
	return true
}
