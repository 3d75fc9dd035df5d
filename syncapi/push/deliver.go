package push

// Delivery: one worker per pusher with queued pushes sends them in order
// to its push gateway. A failure that may pass (a 5xx, a 429, a timeout, a
// refused connection) backs the pusher off exponentially, the backoff
// stored with the pusher; a push still undelivered after GiveUpAfter, or
// refused outright (another 4xx), is dropped; a gateway naming the pushkey
// in "rejected" gets the pusher deleted, as the Push Gateway API requires.

import (
	"context"
	"errors"
	"time"

	"github.com/myelin-chat/myelin/storage"
)

// pushBatch is how many queued pushes a worker reads at once.
const pushBatch = 20

// kick makes sure a worker runs for the pusher and looks at its queue.
func (s *Service) kick(pusherID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if w := s.workers[pusherID]; w != nil {
		w.dirty = true
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return
	}
	w := &worker{wake: make(chan struct{}, 1)}
	s.workers[pusherID] = w
	s.wg.Add(1)
	go s.run(pusherID, w)
}

// outcome of one push.
type outcome int

const (
	sent     outcome = iota
	retry            // try again after a backoff
	drop             // give this push up
	rejected         // the gateway rejected the pushkey: delete the pusher
)

// run is one pusher's worker; it returns when the queue is empty, the
// pusher is gone or the service stops.
func (s *Service) run(pusherID int64, w *worker) {
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
	log := s.log.With("pusher", pusherID)
	finish := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.dirty && !s.stopped {
			return false
		}
		delete(s.workers, pusherID)
		return true
	}
	for ctx.Err() == nil {
		s.mu.Lock()
		w.dirty = false
		s.mu.Unlock()
		p, err := s.cfg.DB.PusherByID(ctx, pusherID)
		if errors.Is(err, storage.ErrNotFound) {
			if finish() {
				return
			}
			continue
		}
		if err != nil {
			log.Error("cannot read the pusher", "err", err)
			s.sleep(ctx, w, s.cfg.MinBackoff)
			continue
		}
		if wait := time.UnixMilli(p.RetryAtTS).Sub(s.cfg.Now()); p.Failures > 0 && wait > 0 {
			s.sleep(ctx, w, wait)
			continue
		}
		batch, err := s.cfg.DB.QueuedPushes(ctx, pusherID, pushBatch)
		if err != nil {
			log.Error("cannot read the pusher's queue", "err", err)
			s.sleep(ctx, w, s.cfg.MinBackoff)
			continue
		}
		if len(batch) == 0 {
			if finish() {
				return
			}
			continue
		}
		if stop := s.deliverBatch(ctx, p, batch); stop {
			if finish() {
				return
			}
		}
	}
	s.mu.Lock()
	delete(s.workers, pusherID)
	s.mu.Unlock()
}

// deliverBatch sends a batch in order, stopping at the first push to
// retry. It reports whether the pusher is gone.
func (s *Service) deliverBatch(ctx context.Context, p *storage.Pusher, batch []storage.QueuedPush) (gone bool) {
	log := s.log.With("pusher", p.ID, "user_id", p.UserID, "app_id", p.AppID)
	for _, q := range batch {
		if s.cfg.Now().Sub(time.UnixMilli(q.CreatedTS)) > s.cfg.GiveUpAfter {
			log.Warn("push undelivered for too long; dropped", "event_id", q.EventID)
			if err := s.cfg.DB.DeleteQueuedPush(ctx, q.ID); err != nil {
				log.Error("cannot dequeue a push", "err", err)
			}
			continue
		}
		res, err := s.push(ctx, p, &q)
		if ctx.Err() != nil {
			return false // stopping: the push stays queued
		}
		switch res {
		case rejected:
			log.Info("the push gateway rejected the pushkey; pusher deleted")
			if err := s.cfg.DB.DeletePusherByID(ctx, p.ID); err != nil {
				log.Error("cannot delete a rejected pusher", "err", err)
				return false
			}
			return true
		case retry:
			failures := p.Failures + 1
			delay := backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, failures)
			log.Warn("push failed; will retry", "event_id", q.EventID, "failures", failures, "retry_in", delay, "err", err)
			if err := s.cfg.DB.SetPusherBackoff(ctx, p.ID, failures, s.cfg.Now().Add(delay).UnixMilli()); err != nil {
				log.Error("cannot record the pusher's backoff", "err", err)
			}
			return false
		case drop:
			log.Warn("push refused; dropped", "event_id", q.EventID, "err", err)
		}
		if err := s.cfg.DB.DeleteQueuedPush(ctx, q.ID); err != nil {
			log.Error("cannot dequeue a push", "err", err)
			return false
		}
		if res == sent && p.Failures > 0 {
			if err := s.cfg.DB.SetPusherBackoff(ctx, p.ID, 0, 0); err != nil {
				log.Error("cannot clear the pusher's backoff", "err", err)
			}
			p.Failures = 0
		}
	}
	return false
}

// backoff is the delay after the nth failure in a row: min doubling, up to
// max.
func backoff(minD, maxD time.Duration, failures int) time.Duration {
	d := minD
	for i := 1; i < failures && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// sleep waits d, or less if the worker is woken or the service stops.
func (s *Service) sleep(ctx context.Context, w *worker, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.wake:
	case <-ctx.Done():
	}
}
