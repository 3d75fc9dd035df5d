package sender

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// run is one destination's worker: it sends the destination's queue,
// transaction after transaction, waiting out its backoff, and returns when
// the queue is empty or the sender stops.
func (s *Sender) run(dest string, w *worker) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := s.log.With("destination", dest)
	for {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		w.dirty = false
		contacted := w.contacted
		w.contacted = false
		s.mu.Unlock()

		failures, retryAt, err := s.cfg.DB.DestinationBackoff(ctx, dest)
		if err != nil {
			log.Error("cannot read the destination's backoff", "err", err)
			s.sleep(ctx, w, s.cfg.MinBackoff)
			continue
		}
		if failures > 0 {
			s.setDown(dest, true)
			if !contacted && s.cfg.Now().UnixMilli() < retryAt {
				s.sleep(ctx, w, time.Duration(retryAt-s.cfg.Now().UnixMilli())*time.Millisecond)
				continue
			}
			// Back from an outage (or its retry is due): catch up first.
			if err := s.catchUp(ctx, dest); err != nil {
				log.Error("catch-up failed", "err", err)
			}
			if contacted {
				if err := s.setBackoff(ctx, dest, 0); err != nil {
					log.Error("cannot clear the destination's backoff", "err", err)
				}
				failures = 0
			}
		}

		batch, err := s.cfg.DB.QueuedPDUs(ctx, dest, MaxPDUsPerTransaction)
		if err != nil {
			log.Error("cannot read the destination's queue", "err", err)
			s.sleep(ctx, w, s.cfg.MinBackoff)
			continue
		}
		if len(batch) == 0 {
			s.mu.Lock()
			if w.dirty || w.contacted || s.stopped {
				s.mu.Unlock()
				continue
			}
			delete(s.workers, dest)
			s.mu.Unlock()
			return
		}

		err = s.send(ctx, dest, batch)
		if ctx.Err() != nil {
			return // stopping: the batch stays queued
		}
		var fe *fedclient.Error
		switch {
		case err == nil:
		case errors.As(err, &fe) && fe.Status >= 400 && fe.Status < 500 && fe.Status != http.StatusTooManyRequests:
			// The remote refuses this transaction as a whole: sending it
			// again would get the same answer.
			log.Warn("transaction refused; dropped", "pdus", len(batch), "err", err)
		default:
			failures++
			delay := backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, failures)
			log.Warn("transaction failed; will retry", "pdus", len(batch), "failures", failures, "retry_in", delay, "err", err)
			if err := s.setBackoffUntil(ctx, dest, failures, s.cfg.Now().Add(delay)); err != nil {
				log.Error("cannot record the destination's backoff", "err", err)
				s.sleep(ctx, w, delay)
			}
			continue
		}
		if err := s.cfg.DB.DeleteQueuedPDUs(ctx, dest, positions(batch)); err != nil {
			log.Error("cannot dequeue a sent transaction", "err", err)
			s.sleep(ctx, w, s.cfg.MinBackoff)
			continue
		}
		// The remote answered: it is up.
		if failures > 0 {
			if err := s.setBackoff(ctx, dest, 0); err != nil {
				log.Error("cannot clear the destination's backoff", "err", err)
			}
		}
	}
}

// backoff is the delay after the nth failure in a row: min doubling, up to
// max.
func backoff(min, max time.Duration, failures int) time.Duration {
	d := min
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// sleep waits d, or less if the worker is woken or the sender stops.
func (s *Sender) sleep(ctx context.Context, w *worker, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.wake:
	case <-ctx.Done():
	}
}

func (s *Sender) setDown(dest string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		s.down[dest] = true
	} else {
		delete(s.down, dest)
	}
}

// setBackoff with failures 0 clears the destination's backoff.
func (s *Sender) setBackoff(ctx context.Context, dest string, failures int) error {
	if err := s.cfg.DB.SetDestinationBackoff(ctx, dest, failures, 0); err != nil {
		return err
	}
	s.setDown(dest, failures > 0)
	return nil
}

func (s *Sender) setBackoffUntil(ctx context.Context, dest string, failures int, until time.Time) error {
	if err := s.cfg.DB.SetDestinationBackoff(ctx, dest, failures, until.UnixMilli()); err != nil {
		return err
	}
	s.setDown(dest, true)
	return nil
}

// catchUp drops all but the latest queued event of each room when more
// than CatchUpThreshold are queued for a destination that was down.
func (s *Sender) catchUp(ctx context.Context, dest string) error {
	n, err := s.cfg.DB.QueuedPDUCount(ctx, dest)
	if err != nil || n <= s.cfg.CatchUpThreshold {
		return err
	}
	dropped, err := s.cfg.DB.CollapseQueuedPDUs(ctx, dest)
	if err != nil {
		return err
	}
	s.log.Info("catching up a destination with the latest event of each room", "destination", dest,
		"queued", n, "dropped", dropped)
	return nil
}

// transaction is the body of PUT /_matrix/federation/v1/send/{txnId}.
type transaction struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus,omitempty"`
}

// send sends the batch's events to dest in one transaction, under the
// bound on transactions in flight. Events no longer stored are left out.
func (s *Sender) send(ctx context.Context, dest string, batch []storage.QueuedPDU) error {
	ids := make([]string, len(batch))
	for i, q := range batch {
		ids[i] = q.EventID
	}
	recs, err := s.cfg.DB.EventsByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("reading the queued events: %w", err)
	}
	byID := make(map[string]*storage.EventRecord, len(recs))
	for _, r := range recs {
		byID[r.EventID] = r
	}
	txn := transaction{Origin: s.cfg.ServerName, OriginServerTS: s.cfg.Now().UnixMilli(), PDUs: []json.RawMessage{}}
	for _, id := range ids {
		rec := byID[id]
		if rec == nil {
			continue
		}
		// The federation form: the redacted form of a redacted event,
		// without unsigned.
		se, err := roomserver.ParseRecord(rec)
		if err != nil {
			s.log.Error("a queued event does not parse; not sent", "destination", dest, "event_id", id, "err", err)
			continue
		}
		txn.PDUs = append(txn.PDUs, se.Event.JSON())
	}
	if len(txn.PDUs) == 0 {
		return nil
	}
	body, err := json.Marshal(txn)
	if err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	_, err = s.cfg.Client.Do(ctx, fedclient.Request{
		Method:      http.MethodPut,
		Destination: dest,
		Path:        "/_matrix/federation/v1/send/" + url.PathEscape(txnID(ids)),
		Body:        body,
	})
	return err
}

// txnID names a transaction by its events, so a retry of the same events
// carries the same ID (the remote then knows it for a retry, as the spec
// asks) and different events never share one.
func txnID(eventIDs []string) string {
	sum := sha256.Sum256([]byte(strings.Join(eventIDs, "\x00")))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func positions(batch []storage.QueuedPDU) []int64 {
	out := make([]int64, len(batch))
	for i, q := range batch {
		out[i] = q.Pos
	}
	return out
}
