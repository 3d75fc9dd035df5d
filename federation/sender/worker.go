package sender

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/bus"
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

		batch, err := s.nextBatch(ctx, dest, w)
		if err != nil {
			log.Error("cannot read the destination's queue", "err", err)
			s.sleep(ctx, w, s.cfg.MinBackoff)
			continue
		}
		if batch.empty() {
			s.mu.Lock()
			if w.dirty || w.contacted || s.stopped || len(w.edus) > 0 {
				s.mu.Unlock()
				continue
			}
			delete(s.workers, dest)
			s.mu.Unlock()
			return
		}

		err = s.send(ctx, dest, w, batch)
		if ctx.Err() != nil {
			return // stopping: what is durable stays queued
		}
		var fe *fedclient.Error
		switch {
		case err == nil:
		case errors.As(err, &fe) && fe.Status >= 400 && fe.Status < 500 && fe.Status != http.StatusTooManyRequests:
			// The remote refuses this transaction as a whole: sending it
			// again would get the same answer.
			log.Warn("transaction refused; dropped", "pdus", len(batch.pdus), "edus", batch.edus(), "err", err)
		default:
			// The durable part is sent again after the backoff; the
			// EDUs held in memory are dropped, as stale by then.
			failures++
			delay := backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, failures)
			log.Warn("transaction failed; will retry", "pdus", len(batch.pdus), "edus", batch.edus(), "failures", failures, "retry_in", delay, "err", err)
			if err := s.setBackoffUntil(ctx, dest, failures, s.cfg.Now().Add(delay)); err != nil {
				log.Error("cannot record the destination's backoff", "err", err)
				s.sleep(ctx, w, delay)
			}
			continue
		}
		if err := s.dequeue(ctx, dest, batch); err != nil {
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

// batch is what one transaction carries: queued PDUs, and EDUs held in
// memory and stored, at most MaxEDUsPerTransaction of them together.
type batch struct {
	pdus    []storage.QueuedPDU
	held    []bus.EDU
	durable []storage.QueuedEDU
}

func (b *batch) empty() bool { return len(b.pdus) == 0 && len(b.held) == 0 && len(b.durable) == 0 }
func (b *batch) edus() int   { return len(b.held) + len(b.durable) }

// nextBatch reads the destination's next transaction. EDUs held in memory
// (typing, presence: they lose their worth within seconds) go first, but
// take at most half the EDU room while stored ones wait, so that neither
// kind starves the other.
func (s *Sender) nextBatch(ctx context.Context, dest string, w *worker) (batch, error) {
	var b batch
	var err error
	if b.pdus, err = s.cfg.DB.QueuedPDUs(ctx, dest, MaxPDUsPerTransaction); err != nil {
		return batch{}, err
	}
	s.mu.Lock()
	b.held = w.takeEDUs(MaxEDUsPerTransaction / 2)
	w.dirty = false
	s.mu.Unlock()
	if b.durable, err = s.cfg.DB.QueuedEDUs(ctx, dest, MaxEDUsPerTransaction-len(b.held)); err != nil {
		return batch{}, err
	}
	if room := MaxEDUsPerTransaction - b.edus(); room > 0 {
		s.mu.Lock()
		b.held = append(b.held, w.takeEDUs(room)...)
		s.mu.Unlock()
	}
	return b, nil
}

// dequeue removes a delivered (or refused) transaction's PDUs and stored
// EDUs from the queues.
func (s *Sender) dequeue(ctx context.Context, dest string, b batch) error {
	if err := s.cfg.DB.DeleteQueuedPDUs(ctx, dest, positions(b.pdus)); err != nil {
		return err
	}
	ids := make([]int64, len(b.durable))
	for i, q := range b.durable {
		ids[i] = q.ID
	}
	return s.cfg.DB.DeleteQueuedEDUs(ctx, dest, ids)
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
		// What is held in memory would be stale by the time it is back.
		if w := s.workers[dest]; w != nil {
			w.edus = nil
		}
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
	EDUs           []wireEDU         `json:"edus,omitempty"`
}

// wireEDU is an EDU as a transaction carries it.
type wireEDU struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

// send sends the batch to dest in one transaction, under the bound on
// transactions in flight. Events no longer stored are left out.
func (s *Sender) send(ctx context.Context, dest string, w *worker, b batch) error {
	ids := make([]string, len(b.pdus))
	for i, q := range b.pdus {
		ids[i] = q.EventID
	}
	encoded := w.takeLookahead()
	var missing []string
	for _, id := range ids {
		if encoded[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		more, err := s.encodePDUs(ctx, dest, missing)
		if err != nil {
			return err
		}
		if encoded == nil {
			encoded = more
		} else {
			maps.Copy(encoded, more)
		}
	}
	txn := transaction{Origin: s.cfg.ServerName, OriginServerTS: s.cfg.Now().UnixMilli(), PDUs: []json.RawMessage{}}
	for _, id := range ids {
		if pdu := encoded[id]; pdu != nil {
			txn.PDUs = append(txn.PDUs, pdu)
		}
	}
	// What names the transaction: its events and stored EDUs, so that a
	// retry carries the same ID; EDUs held in memory are never retried, so
	// a transaction with any is new each time.
	parts := ids
	for _, q := range b.durable {
		txn.EDUs = append(txn.EDUs, wireEDU{Type: q.Type, Content: q.Content})
		parts = append(parts, "edu:"+strconv.FormatInt(q.ID, 10))
	}
	for _, e := range b.held {
		txn.EDUs = append(txn.EDUs, wireEDU{Type: e.Type, Content: e.Content})
	}
	if len(b.held) > 0 {
		parts = append(parts, fmt.Sprintf("held:%d:%d", s.instance, s.txnSerial.Add(1)))
	}
	if len(txn.PDUs) == 0 && len(txn.EDUs) == 0 {
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
	if len(b.pdus) == MaxPDUsPerTransaction {
		// A full transaction: more may wait behind it.
		w.lookahead = s.startLookahead(ctx, dest, b.pdus[len(b.pdus)-1].Pos)
	}
	_, err = s.cfg.Client.Do(ctx, fedclient.Request{
		Method:      http.MethodPut,
		Destination: dest,
		Path:        "/_matrix/federation/v1/send/" + url.PathEscape(txnID(parts)),
		Body:        body,
	})
	if err != nil {
		// Sent again after a backoff, it should carry the events as
		// they are then.
		w.lookahead = nil
	}
	return err
}

// encodePDUs reads the events ids and returns them by ID in their
// federation form: the redacted form of a redacted event, without
// unsigned. Events no longer stored, or that do not parse, are left out.
func (s *Sender) encodePDUs(ctx context.Context, dest string, ids []string) (map[string]json.RawMessage, error) {
	recs, err := s.cfg.DB.EventsByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the queued events: %w", err)
	}
	out := make(map[string]json.RawMessage, len(recs))
	for _, rec := range recs {
		se, err := roomserver.ParseRecord(rec)
		if err != nil {
			s.log.Error("a queued event does not parse; not sent", "destination", dest, "event_id", rec.EventID, "err", err)
			continue
		}
		out[rec.EventID] = se.Event.JSON()
	}
	return out, nil
}

// lookahead is the next transaction's events, read and encoded while the
// one before is in flight: with one transaction in flight per destination,
// the sender would otherwise leave the remote idle while it prepares the
// next. An event redacted meanwhile goes out as it was read (its
// redaction follows it).
type lookahead struct {
	done chan struct{}
	pdus map[string]json.RawMessage // nil if reading them failed
}

// startLookahead reads and encodes, in the background, the events queued
// for dest after position after, up to a transaction's worth.
func (s *Sender) startLookahead(ctx context.Context, dest string, after int64) *lookahead {
	la := &lookahead{done: make(chan struct{})}
	go func() {
		defer close(la.done)
		// The transaction in flight is still queued: read past it.
		queued, err := s.cfg.DB.QueuedPDUs(ctx, dest, 2*MaxPDUsPerTransaction)
		if err != nil {
			return
		}
		var ids []string
		for _, q := range queued {
			if q.Pos > after && len(ids) < MaxPDUsPerTransaction {
				ids = append(ids, q.EventID)
			}
		}
		if len(ids) > 0 {
			la.pdus, _ = s.encodePDUs(ctx, dest, ids)
		}
	}()
	return la
}

// takeLookahead returns what the lookahead started with the previous
// transaction encoded (nil if none), waiting for it to finish.
func (w *worker) takeLookahead() map[string]json.RawMessage {
	la := w.lookahead
	if la == nil {
		return nil
	}
	w.lookahead = nil
	<-la.done
	return la.pdus
}

// txnID names a transaction by what it carries, so a retry of the same
// events carries the same ID (the remote then knows it for a retry, as the
// spec asks) and different transactions never share one.
func txnID(parts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func positions(batch []storage.QueuedPDU) []int64 {
	out := make([]int64, len(batch))
	for i, q := range batch {
		out[i] = q.Pos
	}
	return out
}
