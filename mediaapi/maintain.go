package mediaapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// maintainInterval is how often the background job runs.
const maintainInterval = time.Hour

// purgeBatch bounds the items one purge query returns.
const purgeBatch = 500

// maintain is the background job: it deletes pending uploads that
// expired, URL previews past their lifetime and, with
// media.remote_media_lifetime set, remote media cached longer than that.
func (a *API) maintain() {
	t := time.NewTicker(maintainInterval)
	defer t.Stop()
	for {
		select {
		case <-a.bgCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(a.bgCtx, maintainInterval/2)
		a.maintainOnce(ctx)
		cancel()
	}
}

func (a *API) maintainOnce(ctx context.Context) {
	now := a.now()
	if n, err := a.db.DeleteExpiredPendingUploads(ctx, now.UnixMilli()); err != nil {
		a.logger.Warn("cannot delete expired pending uploads", "err", err)
	} else if n > 0 {
		a.logger.Info("deleted expired pending uploads", "count", n)
	}
	if err := a.db.DeleteExpiredURLPreviews(ctx, now.UnixMilli()); err != nil {
		a.logger.Warn("cannot delete expired URL previews", "err", err)
	}
	if a.remoteLifetime > 0 {
		if n, err := a.purgeRemoteBefore(ctx, now.Add(-a.remoteLifetime).UnixMilli()); err != nil {
			a.logger.Warn("cannot purge cached remote media", "err", err)
		} else if n > 0 {
			a.logger.Info("purged cached remote media", "count", n)
		}
	}
}

// purgeRemoteBefore deletes the remote media cached before ts (ms) and
// returns how many items went. Quarantined items stay, so they are not
// fetched again.
func (a *API) purgeRemoteBefore(ctx context.Context, ts int64) (int, error) {
	total := 0
	for {
		keys, err := a.db.RemoteMediaCachedBefore(ctx, a.serverName, ts, purgeBatch)
		if err != nil {
			return total, err
		}
		for _, k := range keys {
			if err := a.deleteMedia(ctx, k); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return total, err
			}
			total++
		}
		if len(keys) < purgeBatch {
			return total, nil
		}
	}
}

// getConfig implements GET /config: the upload size limit.
func (a *API) getConfig(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	httputil.WriteJSON(w, r, http.StatusOK, map[string]int64{"m.upload.size": a.mc.MaxUploadBytes})
}
