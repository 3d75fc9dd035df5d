package main

// fed_drain: how fast server A delivers to server B, whatever rate A's
// Client-Server API can accept messages at. B's process is stopped
// (SIGSTOP) while A's users send, so the messages pile up in A's queue for
// B; then B is resumed (SIGCONT) and the figure is the rate at which that
// backlog reaches B's user's long-polling /sync, from the resume to the
// last arrival.
//
// A does not back off meanwhile: its one transaction in flight to B waits
// for B's answer (the kernel accepts the connection and buffers the
// request), so the stop must stay well under A's request deadline (60 s
// by default). Had that transaction failed, A would back off and, on B's
// return, catch up by sending only each room's latest event: a different
// path, which this scenario refuses to time (drainMaxStop).

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// drainSettle is how long the scenario waits after A accepted the
	// last message before resuming B, for A's sender to queue everything
	// (it queues a burst in one transaction, far faster than A accepts).
	drainSettle = 3 * time.Second
	// drainMaxStop bounds how long B stays stopped: A's request to B
	// must not reach its deadline (fedclient.DefaultTimeout, 60 s).
	drainMaxStop = 50 * time.Second
)

// fedDrain: senders users of A send total messages into a room on A that a
// user of B joined, while B's process (pid2) is stopped; then B is resumed
// and the backlog's arrival in B's user's /sync is timed. With A's process
// ID (pid) too, the CPU time each server used meanwhile is reported: on a
// machine shared with other work the rate follows the load, the CPU per
// event much less.
func (b *bench) fedDrain(ctx context.Context, b2 *bench, pid, pid2, senders, total int) (figures, error) {
	if pid2 <= 0 {
		return nil, fmt.Errorf("fed_drain stops and resumes the second server: give its process ID with -pid2")
	}
	as, roomID, receiver, since, err := b.fedRoom(ctx, b2, senders)
	if err != nil {
		return nil, err
	}
	// Let the join's own traffic (B's join reaching A, presence) finish
	// before B stops.
	time.Sleep(time.Second)
	prefix := b.run + " drain "
	perSender := total / senders
	total = perSender * senders

	if err := syscall.Kill(pid2, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("stopping the second server: %w", err)
	}
	stopped := time.Now()
	resumed := false
	resume := func() error {
		if resumed {
			return nil
		}
		resumed = true
		return syscall.Kill(pid2, syscall.SIGCONT)
	}
	defer func() { _ = resume() }()

	if err := b.c.sendAll(ctx, as, roomID, prefix, perSender); err != nil {
		return nil, err
	}
	sendTime := time.Since(stopped)
	time.Sleep(drainSettle)
	if d := time.Since(stopped); d > drainMaxStop {
		return nil, fmt.Errorf("fed_drain: the second server would stay stopped %v, past %v (A's request to it would time out): use fewer -fed-messages", d.Round(time.Second), drainMaxStop)
	}
	load := loadAverage()
	cpuA, cpuB := cpuMS(pid), cpuMS(pid2)
	start := time.Now()
	if err := resume(); err != nil {
		return nil, fmt.Errorf("resuming the second server: %w", err)
	}
	arr := b2.c.watchArrivals(ctx, receiver, roomID, since, prefix, total)
	select {
	case err := <-arr.done:
		if err != nil {
			return nil, err
		}
	case <-time.After(2 * time.Minute):
		return nil, fmt.Errorf("fed_drain: %d of %d messages reached B within 2 minutes of its resume", arr.seen.Load(), total)
	}
	drain := arr.last.Sub(start)
	f := figures{"senders": senders, "messages": total,
		"send_per_s":     float64(total) / sendTime.Seconds(),
		"drain_s":        drain.Seconds(),
		"drained_per_s":  float64(total) / drain.Seconds(),
		"load_average_1": load}
	if pid > 0 {
		f["a_cpu_ms_per_1000"] = float64(cpuMS(pid)-cpuA) * 1000 / float64(total)
	}
	f["b_cpu_ms_per_1000"] = float64(cpuMS(pid2)-cpuB) * 1000 / float64(total)
	return f, nil
}

// loadAverage is the machine's load average over the last minute (0 where
// /proc/loadavg is not there).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(data) + " 0")[0], 64)
	return f
}
