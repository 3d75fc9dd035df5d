package roomserver

import (
	"context"
	"slices"
	"time"

	"github.com/myelin-chat/myelin/storage"
)

// The committer: one goroutine runs every write of this process, batching
// the jobs that wait into one transaction (group commit).

const (
	// queueSize bounds the jobs waiting for the committer; submitters
	// block beyond it (back-pressure).
	queueSize = 4096
	// maxBatch bounds the jobs of one transaction, which bounds how long
	// the first job of a batch waits for the last.
	maxBatch = 128
	// batchTimeout bounds one batch transaction. Jobs run under it rather
	// than under their caller's context, so that a caller that gives up
	// does not fail the batch it shares with others.
	batchTimeout = 30 * time.Second
	// jobSavepoint is the savepoint set before each job of a batch.
	jobSavepoint = "roomserver_job"
)

// job is one unit of work of the committer: a Send, a CreateRoom or an
// InputReceived. run executes inside the batch's transaction, under a
// savepoint: when it fails its writes are undone and the others are kept.
type job struct {
	ctx    context.Context
	roomID string
	run    func(ctx context.Context, w *writer) ([]Output, error)
	done   chan jobResult
}

type jobResult struct {
	outs []Output
	err  error
}

// submit queues a job for roomID and waits for its outcome. If ctx ends
// first, submit returns ctx's error; the job may still commit (a retried
// request with a transaction ID then finds its event).
func (rs *Roomserver) submit(ctx context.Context, roomID string, run func(context.Context, *writer) ([]Output, error)) ([]Output, error) {
	j := &job{ctx: ctx, roomID: roomID, run: run, done: make(chan jobResult, 1)}
	select {
	case <-rs.stop:
		return nil, ErrClosed
	default:
	}
	select {
	case rs.queue <- j:
	case <-rs.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-j.done:
		return r.outs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (rs *Roomserver) commitLoop() {
	defer rs.committer.Done()
	for {
		if len(rs.held) > 0 {
			rs.runBatch(rs.collect(nil))
			continue
		}
		var first *job
		select {
		case first = <-rs.queue:
		case <-rs.stop:
			// Finish what was queued before Close, then stop. A submit
			// racing with Close may still get in after this; it then
			// waits for its context like a caller of a dead server.
			for {
				select {
				case j := <-rs.queue:
					rs.runBatch(rs.collect(j))
				default:
					if len(rs.held) == 0 {
						return
					}
					rs.runBatch(rs.collect(nil))
				}
			}
		}
		rs.runBatch(rs.collect(first))
	}
}

// collect returns the held jobs, first (unless nil) and the jobs queued
// behind them, up to maxBatch.
func (rs *Roomserver) collect(first *job) []*job {
	n := min(len(rs.held), maxBatch)
	batch := append([]*job(nil), rs.held[:n]...)
	rs.held = append(rs.held[:0], rs.held[n:]...)
	if first != nil {
		batch = append(batch, first)
	}
	for len(batch) < maxBatch {
		select {
		case j := <-rs.queue:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// absorb takes the jobs queued while the batch ran, up to maxBatch in all:
// those for rooms the batch has locked join it (they share its commit,
// which costs the same for twice the events, since the senders of a batch
// wait for it and the others queue meanwhile); the others are held for the
// next batch, since locking more rooms now would break the lock order.
// Jobs whose caller gave up are answered at once.
func (rs *Roomserver) absorb(rooms []string, n int) []*job {
	var more []*job
	for n+len(more) < maxBatch {
		var j *job
		select {
		case j = <-rs.queue:
		default:
			return more
		}
		switch {
		case j.ctx.Err() != nil:
			j.done <- jobResult{err: j.ctx.Err()}
		case slices.Contains(rooms, j.roomID):
			more = append(more, j)
		default:
			rs.held = append(rs.held, j)
		}
	}
	return more
}

// runBatch runs the jobs, and those for the same rooms queued while they
// ran (absorb), in one transaction, hands their output to the publisher
// once committed, and answers each job.
func (rs *Roomserver) runBatch(batch []*job) {
	live := batch[:0:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	var rooms []string
	for _, j := range live {
		rooms = append(rooms, j.roomID)
	}
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)

	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	published := rs.pub.publishedPos()
	results := make([]jobResult, len(live))
	absorbed := false
	var observed func(committed bool)
	err := rs.db.WithTx(ctx, func(tx *storage.Tx) error {
		clear(results)
		if observed != nil {
			// A retried attempt: the last one rolled back.
			observed(false)
			observed = nil
		}
		// Room locks in a fixed order: two processes locking the same
		// rooms cannot deadlock.
		for _, r := range rooms {
			if err := tx.LockRoom(ctx, r); err != nil {
				return err
			}
		}
		if published > rs.markedPos {
			if err := tx.SetPublishedPos(ctx, published); err != nil {
				return err
			}
		}
		w := newWriter(rs, tx)
		if err := rs.runJobs(ctx, tx, w, live, results); err != nil {
			return err
		}
		// Once per batch (a retried attempt runs them with the rest).
		if !absorbed {
			absorbed = true
			more := rs.absorb(rooms, len(live))
			live = append(live, more...)
			results = append(results, make([]jobResult, len(more))...)
			if err := rs.runJobs(ctx, tx, w, more, results[len(live)-len(more):]); err != nil {
				return err
			}
		}
		if err := w.flush(ctx); err != nil {
			return err
		}
		var oerr error
		observed, oerr = rs.observe(ctx, tx, results)
		return oerr
	})
	if observed != nil {
		observed(err == nil)
	}
	if err != nil {
		rs.cache.clear()
		rs.logger.Error("room input transaction failed", "jobs", len(live), "err", err)
		for i := range results {
			if results[i].err == nil {
				results[i] = jobResult{err: err}
			}
		}
	} else {
		rs.markedPos = max(rs.markedPos, published)
		var outs []Output
		for _, r := range results {
			for _, o := range r.outs {
				if !o.replay {
					outs = append(outs, o)
				}
			}
		}
		rs.pub.enqueue(outs)
	}
	for i, j := range live {
		j.done <- results[i]
	}
}

// runJobs runs jobs in tx, each under a savepoint: a failed job's writes
// are undone and its error is its result; the others are kept.
func (rs *Roomserver) runJobs(ctx context.Context, tx *storage.Tx, w *writer, jobs []*job, results []jobResult) error {
	for i, j := range jobs {
		if err := tx.Savepoint(ctx, jobSavepoint); err != nil {
			return err
		}
		w.startJob()
		outs, err := j.run(ctx, w)
		if err != nil {
			if rerr := tx.RollbackTo(ctx, jobSavepoint); rerr != nil {
				return rerr
			}
			w.undoJob()
			results[i].err = err
		} else {
			results[i].outs = outs
		}
		if err := tx.ReleaseSavepoint(ctx, jobSavepoint); err != nil {
			return err
		}
	}
	return nil
}

// observe hands the Observer the events the batch's jobs added to the
// stream, in stream order.
func (rs *Roomserver) observe(ctx context.Context, tx *storage.Tx, results []jobResult) (func(bool), error) {
	if rs.observer == nil {
		return nil, nil
	}
	var recs []*storage.EventRecord
	for _, r := range results {
		for _, o := range r.outs {
			if o.record != nil && o.StreamPos > 0 {
				recs = append(recs, o.record)
			}
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return rs.observer.ObserveEvents(ctx, tx, recs)
}
