package ratelimit

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestLimiter(perMinute, burst int) (*Limiter, *fakeClock) {
	l := New("test", perMinute, burst)
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	l.now = c.now
	return l, c
}

func TestBurstThenRate(t *testing.T) {
	l, clock := newTestLimiter(60, 3) // one a second, bursts of 3
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != time.Second {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with 1s", ok, wait)
	}
	// Another key has its own bucket.
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("key b limited by key a")
	}
	clock.add(500 * time.Millisecond)
	if ok, wait := l.Allow("a"); ok || wait != 500*time.Millisecond {
		t.Fatalf("after 0.5s: ok=%v wait=%v, want refused with 0.5s", ok, wait)
	}
	clock.add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("after 1s a token should be back")
	}
	// A long pause refills to the burst, not beyond.
	clock.add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("refilled burst: request %d refused", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("the bucket held more than the burst")
	}
}

func TestCheckAndPeek(t *testing.T) {
	l, _ := newTestLimiter(1, 1)
	if err := l.Peek("k"); err != nil {
		t.Fatalf("peek on a fresh key: %v", err)
	}
	if err := l.Peek("k"); err != nil {
		t.Fatalf("peek took a token: %v", err)
	}
	if err := l.Check("k"); err != nil {
		t.Fatalf("first check: %v", err)
	}
	for _, f := range []func(string) error{l.Peek, l.Check} {
		err := f("k")
		me, ok := errors.AsType[*httputil.Error](err)
		if !ok || me.Status != http.StatusTooManyRequests || me.Code != httputil.CodeLimitExceeded ||
			me.Extra["retry_after_ms"] != int64(60000) || me.RetryAfter != time.Minute {
			t.Fatalf("over the limit: %#v", err)
		}
	}
}

func TestNilAndUnlimited(t *testing.T) {
	var l *Limiter
	for range 100 {
		if err := l.Check("x"); err != nil {
			t.Fatal(err)
		}
	}
	if New("off", 0, 10) != nil {
		t.Fatal("perMinute 0 should mean no limiter")
	}
	lim := FromConfig(&config.Config{NoRateLimit: true, RateLimit: config.Default().RateLimit})
	if lim.Login != nil || lim.Availability != nil || lim.Message != nil || lim.Join != nil || lim.Registration != nil || lim.FailedLogin != nil {
		t.Fatalf("no_rate_limit left limiters: %+v", lim)
	}
	lim = FromConfig(config.Default())
	if lim.Login == nil || lim.Availability == nil || lim.Message == nil || lim.Join == nil || lim.Registration == nil || lim.FailedLogin == nil {
		t.Fatalf("default config lacks limiters: %+v", lim)
	}
}

func TestMiddleware(t *testing.T) {
	l, _ := newTestLimiter(1, 2)
	h := l.Middleware(func(r *http.Request) string { return r.Header.Get("X-Key") })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	do := func(key string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Key", key)
		h.ServeHTTP(rec, req)
		return rec
	}
	for range 2 {
		if rec := do("a"); rec.Code != 204 {
			t.Fatalf("within the burst: %d", rec.Code)
		}
	}
	rec := do("a")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "60" {
		t.Fatalf("over the limit: %d, Retry-After %q, body %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	// An empty key is not limited.
	for range 5 {
		if rec := do(""); rec.Code != 204 {
			t.Fatalf("empty key limited: %d", rec.Code)
		}
	}
}

func TestSweepForgetsFullBuckets(t *testing.T) {
	l, clock := newTestLimiter(60, 1)
	for i := range sweepEvery - 1 {
		l.Allow(string(rune('a'+i%26)) + string(rune(i)))
	}
	clock.add(time.Minute)
	l.Allow("last") // the sweepEvery-th call sweeps before taking
	l.mu.Lock()
	n := len(l.buckets)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
}
