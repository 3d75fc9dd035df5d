package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// figures is one scenario's results, written into the JSON report.
type figures map[string]any

// percentile returns the p-th percentile (0–100) of ds in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return ms(s[i])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// bench holds what every scenario shares.
type bench struct {
	c      *client
	run    string // unique prefix for this run's user names
	nextID int
	mu     sync.Mutex
}

// users registers n fresh accounts, a few at a time.
func (b *bench) users(ctx context.Context, n int) ([]*user, error) {
	out := make([]*user, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		b.mu.Lock()
		b.nextID++
		name := fmt.Sprintf("%s_%d", b.run, b.nextID)
		b.mu.Unlock()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, err := b.c.register(ctx, name, "bench-"+name)
			if err != nil {
				errs <- err
				return
			}
			out[i] = u
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

// roomWith creates a public room owned by users[0] that every user joins.
func (b *bench) roomWith(ctx context.Context, users []*user) (string, error) {
	roomID, err := b.c.createRoom(ctx, users[0], map[string]any{"preset": "public_chat"})
	if err != nil {
		return "", fmt.Errorf("create room: %w", err)
	}
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for _, u := range users[1:] {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := b.c.join(ctx, u, roomID); err != nil {
				errs <- fmt.Errorf("join: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return roomID, <-errs
}

// sendThroughput: senders users send messages into one room concurrently.
func (b *bench) sendThroughput(ctx context.Context, senders, total int) (figures, error) {
	us, err := b.users(ctx, senders)
	if err != nil {
		return nil, err
	}
	roomID, err := b.roomWith(ctx, us)
	if err != nil {
		return nil, err
	}
	lat := make([][]time.Duration, senders)
	errs := make(chan error, senders)
	start := time.Now()
	var wg sync.WaitGroup
	for i, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range total / senders {
				t0 := time.Now()
				if _, err := b.c.send(ctx, u, roomID, fmt.Sprintf("msg %d/%d", i, j)); err != nil {
					errs <- err
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return figures{"senders": senders, "messages": len(all),
		"messages_per_s": float64(len(all)) / elapsed.Seconds(),
		"send_p50_ms":    percentile(all, 50), "send_p99_ms": percentile(all, 99)}, nil
}

// syncDelivery: a receiver long-polls /sync while a sender sends messages
// at a steady rate; latency is from the start of the send request to the
// message's arrival in the receiver's /sync.
func (b *bench) syncDelivery(ctx context.Context, messages int, rate float64) (figures, error) {
	us, err := b.users(ctx, 2)
	if err != nil {
		return nil, err
	}
	roomID, err := b.roomWith(ctx, us)
	if err != nil {
		return nil, err
	}
	return delivery(ctx, b.c, us[0], b.c, us[1], roomID, messages, rate)
}

// delivery is syncDelivery between a sender on one server (sc) and a
// receiver on the same or another (rc), both in roomID.
func delivery(ctx context.Context, sc *client, sender *user, rc *client, receiver *user, roomID string, messages int, rate float64) (figures, error) {
	first, err := rc.sync(ctx, receiver, "", 0, "")
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan error, 1)
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		since := first.NextBatch
		for len(lat) < messages {
			resp, err := rc.sync(pollCtx, receiver, since, 30000, "")
			if err != nil {
				done <- err
				return
			}
			now := time.Now()
			since = resp.NextBatch
			mu.Lock()
			for _, ev := range resp.Rooms.Join[roomID].Timeline.Events {
				if t0, ok := sent[ev.Content.Body]; ok {
					lat = append(lat, now.Sub(t0))
					delete(sent, ev.Content.Body)
				}
			}
			mu.Unlock()
		}
		done <- nil
	}()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range messages {
		<-tick.C
		body := "delivery " + strconv.Itoa(i)
		mu.Lock()
		sent[body] = time.Now()
		mu.Unlock()
		if _, err := sc.send(ctx, sender, roomID, body); err != nil {
			return nil, err
		}
	}
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
	case <-time.After(30 * time.Second):
		return nil, errors.New("sync delivery: messages did not all arrive within 30s")
	}
	return figures{"messages": messages, "rate_per_s": rate,
		"delivery_p50_ms": percentile(lat, 50), "delivery_p99_ms": percentile(lat, 99)}, nil
}

// longPollers starts one long-polling /sync loop per user (several per
// user when conns > len(users)) and reports, per message body, when the
// last of them saw it.
type longPollers struct {
	mu      sync.Mutex
	seen    map[string]int       // body → how many pollers saw it
	allSeen map[string]time.Time // body → when the last one did
	want    int
	ready   sync.WaitGroup
	stop    context.CancelFunc
	errs    chan error
}

func (b *bench) startLongPollers(ctx context.Context, us []*user, conns int) *longPollers {
	ctx, stop := context.WithCancel(ctx)
	lp := &longPollers{seen: map[string]int{}, allSeen: map[string]time.Time{}, want: conns,
		stop: stop, errs: make(chan error, conns)}
	for i := range conns {
		u := us[i%len(us)]
		lp.ready.Add(1)
		go func() {
			first, err := b.c.sync(ctx, u, "", 0, `{"room":{"timeline":{"limit":1}}}`)
			lp.ready.Done()
			if err != nil {
				lp.errs <- err
				return
			}
			since := first.NextBatch
			for ctx.Err() == nil {
				resp, err := b.c.sync(ctx, u, since, 60000, "")
				if err != nil {
					if ctx.Err() == nil {
						lp.errs <- err
					}
					return
				}
				now := time.Now()
				since = resp.NextBatch
				lp.mu.Lock()
				for _, room := range resp.Rooms.Join {
					for _, ev := range room.Timeline.Events {
						lp.seen[ev.Content.Body]++
						if lp.seen[ev.Content.Body] == lp.want {
							lp.allSeen[ev.Content.Body] = now
						}
					}
				}
				lp.mu.Unlock()
			}
		}()
	}
	return lp
}

// waitAll waits until every poller saw body, or the deadline passes.
func (lp *longPollers) waitAll(body string, deadline time.Duration) (time.Time, error) {
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		lp.mu.Lock()
		t, ok := lp.allSeen[body]
		lp.mu.Unlock()
		if ok {
			return t, nil
		}
		select {
		case err := <-lp.errs:
			return time.Time{}, err
		case <-time.After(time.Millisecond):
		}
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return time.Time{}, fmt.Errorf("%d of %d long-polls saw %q within %s", lp.seen[body], lp.want, body, deadline)
}

// fanout: every member of a room long-polls; one message must reach all.
func (b *bench) fanout(ctx context.Context, members, rounds int) (figures, error) {
	us, err := b.users(ctx, members)
	if err != nil {
		return nil, err
	}
	roomID, err := b.roomWith(ctx, us)
	if err != nil {
		return nil, err
	}
	lp := b.startLongPollers(ctx, us, members)
	defer lp.stop()
	lp.ready.Wait()
	time.Sleep(200 * time.Millisecond) // let the long-polls reach the server
	var lat []time.Duration
	for i := range rounds {
		body := "fanout " + strconv.Itoa(i)
		t0 := time.Now()
		if _, err := b.c.send(ctx, us[0], roomID, body); err != nil {
			return nil, err
		}
		t, err := lp.waitAll(body, 30*time.Second)
		if err != nil {
			return nil, err
		}
		lat = append(lat, t.Sub(t0))
	}
	return figures{"members": members, "rounds": rounds,
		"all_members_p50_ms": percentile(lat, 50), "all_members_max_ms": percentile(lat, 100)}, nil
}

// initialSync: one user in rooms rooms of messages messages each; the
// figure is the median of 5 initial /syncs.
func (b *bench) initialSync(ctx context.Context, rooms, messages int) (figures, error) {
	us, err := b.users(ctx, 1)
	if err != nil {
		return nil, err
	}
	u := us[0]
	for range rooms {
		roomID, err := b.c.createRoom(ctx, u, map[string]any{"preset": "private_chat"})
		if err != nil {
			return nil, err
		}
		for j := range messages {
			if _, err := b.c.send(ctx, u, roomID, "history "+strconv.Itoa(j)); err != nil {
				return nil, err
			}
		}
	}
	var lat []time.Duration
	for range 5 {
		t0 := time.Now()
		resp, err := b.c.sync(ctx, u, "", 0, "")
		if err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
		if len(resp.Rooms.Join) != rooms {
			return nil, fmt.Errorf("initial sync: %d joined rooms, want %d", len(resp.Rooms.Join), rooms)
		}
	}
	return figures{"rooms": rooms, "messages_per_room": messages, "initial_sync_p50_ms": percentile(lat, 50)}, nil
}

// messagesPages: paginates a room's history backwards, limit 100 a page.
func (b *bench) messagesPages(ctx context.Context, history, passes int) (figures, error) {
	us, err := b.users(ctx, 1)
	if err != nil {
		return nil, err
	}
	u := us[0]
	roomID, err := b.c.createRoom(ctx, u, map[string]any{"preset": "private_chat"})
	if err != nil {
		return nil, err
	}
	for i := range history {
		if _, err := b.c.send(ctx, u, roomID, "page "+strconv.Itoa(i)); err != nil {
			return nil, err
		}
	}
	pages, events := 0, 0
	t0 := time.Now()
	for range passes {
		from := ""
		for {
			q := url.Values{"dir": {"b"}, "limit": {"100"}}
			if from != "" {
				q.Set("from", from)
			}
			var out struct {
				Chunk []struct {
					EventID string `json:"event_id"`
				} `json:"chunk"`
				End string `json:"end"`
			}
			if err := b.c.do(ctx, "GET", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), u.Token, nil, &out); err != nil {
				return nil, err
			}
			pages++
			events += len(out.Chunk)
			if out.End == "" || len(out.Chunk) == 0 {
				break
			}
			from = out.End
		}
	}
	elapsed := time.Since(t0)
	return figures{"history_events": history, "pages": pages, "events_read": events,
		"pages_per_s": float64(pages) / elapsed.Seconds()}, nil
}

// createRooms: one user creates rooms with concurrency 4.
func (b *bench) createRooms(ctx context.Context, n int) (figures, error) {
	us, err := b.users(ctx, 1)
	if err != nil {
		return nil, err
	}
	sem := make(chan struct{}, 4)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := b.c.createRoom(ctx, us[0], map[string]any{"preset": "public_chat", "name": "room " + strconv.Itoa(i)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return figures{"rooms": n, "rooms_per_s": float64(n) / elapsed.Seconds()}, nil
}

// joinCost: the time of one join into a room that already has members
// members; the median of 5 joins.
func (b *bench) joinCost(ctx context.Context, members int) (figures, error) {
	us, err := b.users(ctx, members+5)
	if err != nil {
		return nil, err
	}
	roomID, err := b.roomWith(ctx, us[:members])
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for _, u := range us[members:] {
		t0 := time.Now()
		if err := b.c.join(ctx, u, roomID); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return figures{"members": members, "join_p50_ms": percentile(lat, 50)}, nil
}

// heldConnections: conns long-polling /sync connections (spread over a
// smaller number of users) all wait; one message must reach every one.
// With the server's PID the resident memory per held connection is reported.
// The server is left idle for settle before the "before" reading, so that
// the memory of the scenarios before (which a server may give back when it
// goes idle) is not counted against the held connections, nor for them.
func (b *bench) heldConnections(ctx context.Context, conns, users, pid int, settle time.Duration) (figures, error) {
	us, err := b.users(ctx, users)
	if err != nil {
		return nil, err
	}
	roomID, err := b.roomWith(ctx, us)
	if err != nil {
		return nil, err
	}
	if pid > 0 {
		time.Sleep(settle)
	}
	before := rssKB(pid)
	lp := b.startLongPollers(ctx, us, conns)
	defer lp.stop()
	lp.ready.Wait()
	time.Sleep(2 * time.Second) // every long-poll is now parked in the server
	during := rssKB(pid)
	body := "held"
	cpu0 := cpuMS(pid)
	t0 := time.Now()
	if _, err := b.c.send(ctx, us[0], roomID, body); err != nil {
		return nil, err
	}
	t, err := lp.waitAll(body, 60*time.Second)
	if err != nil {
		return nil, err
	}
	f := figures{"connections": conns, "users": users, "all_received_ms": ms(t.Sub(t0))}
	if pid > 0 {
		// The CPU the server spent until every poll had the message: on
		// a shared machine, steadier than the time it took.
		f["server_cpu_ms_until_all_received"] = cpuMS(pid) - cpu0
		f["server_rss_before_kb"] = before
		f["server_rss_held_kb"] = during
		f["kb_per_connection"] = float64(during-before) / float64(conns)
	}
	return f, nil
}

// cpuMS reads the CPU time (user and system) a local process has used, in
// milliseconds, or 0 when pid is 0 or unreadable.
func cpuMS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces) in
	// parentheses; utime and stime are the 14th and 15th of the line.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return (utime + stime) * 1000 / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux platform Go supports.
const clockTicks = 100

// rssKB reads VmRSS of a local process, or 0 when pid is 0 or unreadable.
func rssKB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
