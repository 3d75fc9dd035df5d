package clientapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// wantLimited checks a 429 M_LIMIT_EXCEEDED with retry_after_ms.
func wantLimited(t *testing.T, st int, raw []byte) {
	t.Helper()
	wantErr(t, st, raw, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	var e struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	if json.Unmarshal(raw, &e); e.RetryAfterMS <= 0 {
		t.Fatalf("429 without retry_after_ms: %s", raw)
	}
}

func TestAccountRateLimits(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.NoRateLimit = false
		cfg.RateLimit = config.RateLimitConfig{
			LoginPerMinute: 1, LoginBurst: 4,
			RegistrationPerMinute: 1, RegistrationBurst: 3,
			MessagePerMinute: 1, MessageBurst: 1, JoinPerMinute: 1, JoinBurst: 1,
		}
	}))[0]
	// Registration: RegisterUser makes two requests; the third is allowed,
	// the fourth refused. Availability checks have a budget of their own,
	// six times larger.
	s.RegisterUser(t, "alice")
	for range 18 {
		st, raw := s.Do(t, "GET", "/_matrix/client/v3/register/available?username=x", "", nil)
		wantOK(t, st, raw)
	}
	st, raw := s.Do(t, "GET", "/_matrix/client/v3/register/available?username=x", "", nil)
	wantLimited(t, st, raw)
	s.Do(t, "POST", registerPath, "", map[string]any{"username": "bob", "password": "pw"})
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "bob", "password": "pw"})
	wantLimited(t, st, raw)
	st, raw = s.Do(t, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=x", "", nil)
	wantLimited(t, st, raw)

	// Login: a budget per address (and one of failures per account,
	// checked alike): after the burst, the next attempt is refused, with
	// a Retry-After header.
	for range 4 {
		st, raw := s.Do(t, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice", "password": "wrong"})
		wantErr(t, st, raw, 403, "M_FORBIDDEN")
	}
	req, _ := http.NewRequest("POST", s.ClientURL+loginPath, strings.NewReader(`{"type":"m.login.password","user":"alice","password":"`+servertest.TestPassword+`"}`))
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	json.NewDecoder(resp.Body).Decode(&body)
	wantLimited(t, resp.StatusCode, body)
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("429 without a Retry-After header")
	}
}
