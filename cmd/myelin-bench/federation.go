package main

// Federation scenarios: two homeservers, A (-url) and B (-url2), that
// federate with each other. Everything is still driven through the
// Client-Server API: users of A make a room, users of B join it through A
// (POST /join with via) and the figures are what B's users see.

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// serverOf returns the server name of a user ID ("@a:127.0.0.1:8448" →
// "127.0.0.1:8448").
func serverOf(userID string) string {
	_, server, _ := strings.Cut(userID, ":")
	return server
}

// joinVia joins u to roomID through server (its via), on u's server.
func (c *client) joinVia(ctx context.Context, u *user, roomID, server string) error {
	return c.do(ctx, "POST", "/_matrix/client/v3/join/"+url.PathEscape(roomID)+"?via="+url.QueryEscape(server),
		u.Token, map[string]any{}, nil)
}

// fedDelivery: a user of A sends at a steady rate into a room on A that a
// user of B joined; latency is from the start of the send request on A to
// the message's arrival in B's user's long-polling /sync.
func (b *bench) fedDelivery(ctx context.Context, b2 *bench, messages int, rate float64) (figures, error) {
	as, err := b.users(ctx, 1)
	if err != nil {
		return nil, err
	}
	bs, err := b2.users(ctx, 1)
	if err != nil {
		return nil, err
	}
	roomID, err := b.c.createRoom(ctx, as[0], map[string]any{"preset": "public_chat"})
	if err != nil {
		return nil, fmt.Errorf("create room: %w", err)
	}
	if err := b2.c.joinVia(ctx, bs[0], roomID, serverOf(as[0].ID)); err != nil {
		return nil, fmt.Errorf("remote join: %w", err)
	}
	return delivery(ctx, b.c, as[0], b2.c, bs[0], roomID, messages, rate)
}

// fedJoin: members users of A join a room on A; then the first user of B
// joins it through A (make_join, send_join with the room's state, B
// checking every event of it), timed until the join request returns. A
// second user of B then joins the room B is now in.
func (b *bench) fedJoin(ctx context.Context, b2 *bench, members int) (figures, error) {
	as, err := b.users(ctx, members)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	roomID, err := b.roomWith(ctx, as)
	if err != nil {
		return nil, err
	}
	fill := time.Since(t0)
	bs, err := b2.users(ctx, 2)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	if err := b2.c.joinVia(ctx, bs[0], roomID, serverOf(as[0].ID)); err != nil {
		return nil, fmt.Errorf("first remote join: %w", err)
	}
	first := time.Since(t0)
	t0 = time.Now()
	if err := b2.c.joinVia(ctx, bs[1], roomID, serverOf(as[0].ID)); err != nil {
		return nil, fmt.Errorf("second remote join: %w", err)
	}
	second := time.Since(t0)
	return figures{"members": members, "first_remote_join_ms": ms(first), "second_remote_join_ms": ms(second),
		"room_fill_s": fill.Seconds()}, nil
}

// fedThroughput: senders users of A send total messages as fast as they
// can into a room that a user of B joined, which counts them as they
// arrive in its /sync (fetching with /messages what a limited timeline
// skipped). The figures: A's send rate, the rate at which the messages
// reached B's user, how many had when the last send returned, and the
// rate at which the rest (B's backlog) arrived after that: the delivery
// capacity, which A's client API may not be able to feed.
func (b *bench) fedThroughput(ctx context.Context, b2 *bench, senders, total int) (figures, error) {
	as, roomID, receiver, since, err := b.fedRoom(ctx, b2, senders)
	if err != nil {
		return nil, err
	}
	prefix := b.run + " tp "
	perSender := total / senders
	total = perSender * senders

	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	arr := b2.c.watchArrivals(pollCtx, receiver, roomID, since, prefix, total)
	start := time.Now()
	if err := b.c.sendAll(ctx, as, roomID, prefix, perSender); err != nil {
		return nil, err
	}
	sendTime := time.Since(start)
	atSendEnd := int(arr.seen.Load())
	select {
	case err := <-arr.done:
		if err != nil {
			return nil, err
		}
	case <-time.After(2 * time.Minute):
		return nil, fmt.Errorf("federation throughput: not all %d messages reached B within 2 minutes of the last send", total)
	}
	lastArrival := arr.last
	deliverTime := lastArrival.Sub(start)
	drain := lastArrival.Sub(start.Add(sendTime))
	f := figures{"senders": senders, "messages": total,
		"send_per_s":           float64(total) / sendTime.Seconds(),
		"delivered_per_s":      float64(total) / deliverTime.Seconds(),
		"on_b_when_sends_done": atSendEnd,
		"last_after_sends_ms":  ms(drain)}
	// Once A has accepted every message, B's backlog drains at the
	// delivery capacity, whatever A's client API could take.
	if backlog := total - atSendEnd; backlog > 0 && drain > 0 {
		f["backlog_drain_per_s"] = float64(backlog) / drain.Seconds()
	}
	return f, nil
}

// sendAll has each of senders send perSender messages into roomID at
// once, as fast as the server takes them, their bodies prefix followed by
// the sender's index and the message's.
func (c *client) sendAll(ctx context.Context, senders []*user, roomID, prefix string, perSender int) error {
	errs := make(chan error, len(senders))
	var wg sync.WaitGroup
	for i, u := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perSender {
				if _, err := c.send(ctx, u, roomID, prefix+strconv.Itoa(i)+"/"+strconv.Itoa(j)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// arrivals follows the messages reaching a user's /sync (watchArrivals).
type arrivals struct {
	seen atomic.Int64 // distinct messages seen so far
	// last is when the sync answer with the last of them returned; read
	// it only after done has answered nil.
	last time.Time
	// done answers once: nil when all arrived, else why the watch failed.
	done chan error
}

// watchArrivals long-polls u's /sync from since until total distinct
// messages whose body starts with prefix have arrived in roomID, fetching
// with /messages what a limited timeline skipped.
func (c *client) watchArrivals(ctx context.Context, u *user, roomID, since, prefix string, total int) *arrivals {
	a := &arrivals{done: make(chan error, 1)}
	go func() {
		seen := map[string]bool{}
		filter := `{"room":{"timeline":{"limit":100}}}`
		for len(seen) < total {
			resp, err := c.sync(ctx, u, since, 30000, filter)
			if err != nil {
				a.done <- err
				return
			}
			now := time.Now()
			room := resp.Rooms.Join[roomID]
			for _, ev := range room.Timeline.Events {
				if strings.HasPrefix(ev.Content.Body, prefix) {
					seen[ev.Content.Body] = true
				}
			}
			if room.Timeline.Limited {
				// The events between the last sync and this timeline are
				// on the server too: page back to the previous token.
				if err := c.messagesBetween(ctx, u, roomID, room.Timeline.PrevBatch, since, func(body string) {
					if strings.HasPrefix(body, prefix) {
						seen[body] = true
					}
				}); err != nil {
					a.done <- err
					return
				}
			}
			since = resp.NextBatch
			a.last = now
			a.seen.Store(int64(len(seen)))
		}
		a.done <- nil
	}()
	return a
}

// messagesBetween pages /messages backwards from from to to and calls f
// with the body of each event.
func (c *client) messagesBetween(ctx context.Context, u *user, roomID, from, to string, f func(body string)) error {
	for range 1000 {
		q := url.Values{"dir": {"b"}, "from": {from}, "to": {to}, "limit": {"1000"}}
		var page struct {
			Chunk []struct {
				Content struct {
					Body string `json:"body"`
				} `json:"content"`
			} `json:"chunk"`
			End string `json:"end"`
		}
		if err := c.do(ctx, "GET", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), u.Token, nil, &page); err != nil {
			return err
		}
		for _, ev := range page.Chunk {
			f(ev.Content.Body)
		}
		if page.End == "" || len(page.Chunk) == 0 {
			return nil
		}
		from = page.End
	}
	return fmt.Errorf("/messages between %s and %s did not end", from, to)
}

// fedRoom makes the room of the throughput scenarios: senders users of A
// in a room of A's, joined by one user of B (receiver), whose sync token
// after the join is since.
func (b *bench) fedRoom(ctx context.Context, b2 *bench, senders int) (as []*user, roomID string, receiver *user, since string, err error) {
	if as, err = b.users(ctx, senders); err != nil {
		return nil, "", nil, "", err
	}
	if roomID, err = b.roomWith(ctx, as); err != nil {
		return nil, "", nil, "", err
	}
	bs, err := b2.users(ctx, 1)
	if err != nil {
		return nil, "", nil, "", err
	}
	receiver = bs[0]
	if err := b2.c.joinVia(ctx, receiver, roomID, serverOf(as[0].ID)); err != nil {
		return nil, "", nil, "", fmt.Errorf("remote join: %w", err)
	}
	first, err := b2.c.sync(ctx, receiver, "", 0, "")
	if err != nil {
		return nil, "", nil, "", err
	}
	return as, roomID, receiver, first.NextBatch, nil
}
