package syncapi_test

// /sync over HTTP/1.1 is parked as it arrives and run off its request's
// goroutine (longpoll.go, resume.go): these tests check what a client sees
// of it: errors, timeouts, many long-polls woken at once, and connections
// that stay usable after a parked answer.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestParkedSyncErrors(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	for _, tc := range []struct {
		token, query string
		status       int
		code         string
	}{
		{"", "", 401, "M_MISSING_TOKEN"},
		{"nope", "", 401, "M_UNKNOWN_TOKEN"},
		{alice.token, "?timeout=-1", 400, "M_INVALID_PARAM"},
		{alice.token, "?since=garbage", 400, "M_INVALID_PARAM"},
		{alice.token, "?filter=12345", 400, "M_INVALID_PARAM"},
	} {
		status, raw := s.Do(t, "GET", v3+"/sync"+tc.query, tc.token, nil)
		res := gjson.ParseBytes(raw)
		if status != tc.status || res.Get("errcode").Str != tc.code || res.Get("error").Str == "" {
			t.Errorf("token %q, query %q: got %d %s, want %d %s", tc.token, tc.query, status, raw, tc.status, tc.code)
		}
	}
}

// syncOnce sends one /sync and reports whether it went over a connection
// used before.
func syncOnce(t *testing.T, u *user, q url.Values) (res gjson.Result, reused bool) {
	t.Helper()
	var info httptrace.GotConnInfo
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { info = i }})
	req, err := http.NewRequestWithContext(ctx, "GET", u.s.ClientURL+v3+"/sync?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := u.s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sync: %d %s %v", resp.StatusCode, raw, err)
	}
	return gjson.ParseBytes(raw), info.Reused
}

func TestParkedSyncTimesOutAndKeepsTheConnection(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	alice.createRoom(t, map[string]any{"preset": "private_chat"})
	since := alice.sync(t, url.Values{"set_presence": {"offline"}}).Get("next_batch").Str
	for i := range 3 {
		start := time.Now()
		res, reused := syncOnce(t, alice, url.Values{"since": {since}, "timeout": {"300"}, "set_presence": {"offline"}})
		took := time.Since(start)
		if took < 250*time.Millisecond || took > 5*time.Second {
			t.Fatalf("a 300 ms long-poll answered after %v", took)
		}
		if res.Get("rooms").Exists() || res.Get("next_batch").Str == "" {
			t.Fatalf("timed-out long-poll answered %s", res.Raw)
		}
		if i > 0 && !reused {
			t.Fatal("the connection of a parked answer was not reused")
		}
		since = res.Get("next_batch").Str
	}
}

// TestParkedSyncsWokenTogether: many long-polls, identical ones (one
// client's connections) and different ones, all get the message that
// wakes them.
func TestParkedSyncsWokenTogether(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	s.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 100
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	aliceSince := alice.sync(t, url.Values{"set_presence": {"offline"}}).Get("next_batch").Str
	bobSince := bob.sync(t, url.Values{"set_presence": {"offline"}}).Get("next_batch").Str

	type poll struct {
		u     *user
		query url.Values
	}
	var polls []poll
	for range 20 {
		polls = append(polls, poll{alice, url.Values{"since": {aliceSince}}})
	}
	for range 5 {
		polls = append(polls, poll{alice, url.Values{"since": {aliceSince}, "filter": {`{"room":{"timeline":{"limit":1}}}`}}})
	}
	for range 5 {
		polls = append(polls, poll{bob, url.Values{"since": {bobSince}}})
	}
	var wg sync.WaitGroup
	got := make([][]string, len(polls))
	for i, p := range polls {
		p.query.Set("timeout", "20000")
		p.query.Set("set_presence", "offline")
		wg.Go(func() {
			res, _ := syncOnce(t, p.u, p.query)
			got[i] = timelineIDs(res, "join", roomID)
		})
	}
	time.Sleep(300 * time.Millisecond) // let them all park
	ev := bob.send(t, roomID, "wake up, everyone")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("not every long-poll was answered")
	}
	for i, ids := range got {
		if !slices.Contains(ids, ev) {
			t.Errorf("long-poll %d (%s, %v) got timeline %v without %s", i, polls[i].u.id, polls[i].query, ids, ev)
		}
	}
}

// TestParkedSyncDroppedWhenClientLeaves: a long-poll whose client closes
// the connection is dropped at once (logged with status 499), not kept
// until its timeout.
func TestParkedSyncDroppedWhenClientLeaves(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("hangups of parked requests are noticed on Linux only")
	}
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	since := alice.sync(t, url.Values{"set_presence": {"offline"}}).Get("next_batch").Str
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", s.ClientURL+v3+"/sync?timeout=30000&set_presence=offline&since="+url.QueryEscape(since), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+alice.token)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := s.Client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	cancel() // closes the connection
	<-done
	const dropped = `myelin_http_requests_total{code="499",method="GET",route="/_matrix/client/v3/sync"} 1`
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, metrics := s.Do(t, "GET", "/metrics", "", nil)
		if strings.Contains(string(metrics), dropped) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the metrics", dropped)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
