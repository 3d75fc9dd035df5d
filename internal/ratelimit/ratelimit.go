// Package ratelimit limits how often a client may do something: one token
// bucket per key (an IP address, a user ID), refilled at a steady rate up
// to a burst (client-server-api "Rate limiting"). A refused request is a
// 429 M_LIMIT_EXCEEDED with retry_after_ms and a Retry-After header.
//
// Buckets live in the memory of one process, as in Synapse's workers: with
// several processes a client may get up to one budget per process. The
// limits are configured by the rate_limit.* options and turned off with
// no_rate_limit.
package ratelimit

import (
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
)

// Limiter is a set of token buckets, one per key, sharing one rate and
// burst. A nil or disabled Limiter allows everything. It is safe for
// concurrent use.
type Limiter struct {
	name     string
	interval time.Duration // time to earn one token
	burst    float64

	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
	now     func() time.Time // tests replace it
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

// sweepEvery is how many calls pass between sweeps of full buckets, which
// keeps the map as small as the set of recently limited keys.
const sweepEvery = 1024

// New returns a limiter allowing perMinute actions a minute per key, with
// bursts of up to burst. perMinute <= 0 means unlimited. name says what is
// limited, in the error message.
func New(name string, perMinute, burst int) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	return &Limiter{
		name:     name,
		interval: time.Minute / time.Duration(perMinute),
		burst:    float64(max(burst, 1)),
		buckets:  map[string]*bucket{},
		now:      time.Now,
	}
}

// Allow takes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is there.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.take(key, true)
}

// take looks at key's bucket and, when take is true and a token is
// there, takes it.
func (l *Limiter) take(key string, take bool) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.calls++
	if l.calls%sweepEvery == 0 {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		if !take {
			return true, 0 // a new bucket is full
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.interval))
	b.at = now
	if b.tokens >= 1 {
		if take {
			b.tokens--
		}
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(l.interval))
	return false, max(wait, time.Millisecond)
}

// sweep forgets the buckets that have refilled: a new bucket is full too.
func (l *Limiter) sweep(now time.Time) {
	full := time.Duration(l.burst * float64(l.interval))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
}

// Check is Allow as an error: nil, or the 429 M_LIMIT_EXCEEDED to send.
func (l *Limiter) Check(key string) error {
	if ok, wait := l.Allow(key); !ok {
		return httputil.LimitExceeded("too many requests ("+l.name+"); try again later", wait)
	}
	return nil
}

// Peek is Check without taking a token: it says whether the next Check
// would pass. For limits that count only failures (a failed login takes a
// token; every attempt peeks first).
func (l *Limiter) Peek(key string) error {
	if ok, wait := l.take(key, false); !ok {
		return httputil.LimitExceeded("too many requests ("+l.name+"); try again later", wait)
	}
	return nil
}

// Middleware limits the requests of a handler by the key that key returns
// for each (an empty key is not limited).
func (l *Limiter) Middleware(key func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k := key(r); k != "" {
				if err := l.Check(k); err != nil {
					httputil.WriteError(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Limits are the server's limiters, one per kind of action. A nil field
// allows everything.
type Limits struct {
	// Login limits login attempts per client IP address.
	Login *Limiter
	// FailedLogin limits failed login attempts per account, so that one
	// account cannot be guessed at from many addresses.
	FailedLogin *Limiter
	// Registration limits registration requests per client IP address
	// (and the registration token validity check, a guessing target).
	Registration *Limiter
	// Availability limits username availability checks per client IP
	// address: six times the registration budget, since clients check
	// as the user types a name, then register once.
	Availability *Limiter
	// Message limits sending events, per user ID.
	Message *Limiter
	// Join limits joining rooms, per user ID.
	Join *Limiter
}

// FromConfig builds the limiters from cfg's rate_limit options; with
// no_rate_limit every limiter is nil.
func FromConfig(cfg *config.Config) *Limits {
	if cfg == nil || cfg.NoRateLimit {
		return &Limits{}
	}
	rl := cfg.RateLimit
	return &Limits{
		Login:        New("login", rl.LoginPerMinute, rl.LoginBurst),
		FailedLogin:  New("failed login", rl.LoginPerMinute, rl.LoginBurst),
		Registration: New("registration", rl.RegistrationPerMinute, rl.RegistrationBurst),
		Availability: New("username availability", rl.RegistrationPerMinute*6, rl.RegistrationBurst*6),
		Message:      New("sending", rl.MessagePerMinute, rl.MessageBurst),
		Join:         New("joining", rl.JoinPerMinute, rl.JoinBurst),
	}
}
