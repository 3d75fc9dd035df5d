package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestTokenFromRequest(t *testing.T) {
	for _, c := range []struct {
		name    string
		headers []string
		query   string
		want    string
		wantErr bool
	}{
		{name: "bearer", headers: []string{"Bearer abc"}, want: "abc"},
		{name: "bearer any case, spaces", headers: []string{"bEaReR   abc "}, want: "abc"},
		{name: "query", query: "access_token=abc", want: "abc"},
		{name: "none", wantErr: true},
		{name: "basic", headers: []string{"Basic abc"}, wantErr: true},
		{name: "bearer without token", headers: []string{"Bearer "}, wantErr: true},
		{name: "two headers", headers: []string{"Bearer a", "Bearer b"}, wantErr: true},
		{name: "header and query", headers: []string{"Bearer a"}, query: "access_token=a", wantErr: true},
		{name: "query twice", query: "access_token=a&access_token=b", wantErr: true},
		{name: "empty query", query: "access_token=", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?"+c.query, nil)
			for _, h := range c.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := TokenFromRequest(r)
			if c.wantErr {
				me, ok := errors.AsType[*httputil.Error](err)
				if !ok || me.Status != 401 || me.Code != httputil.CodeMissingToken {
					t.Fatalf("got %q, %v; want 401 M_MISSING_TOKEN", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestPasswords(t *testing.T) {
	long := strings.Repeat("a", 100)
	for _, pw := range []string{"short", strings.Repeat("x", 72), long, strings.Repeat("é", 200)} {
		h, err := HashPassword(pw, 4)
		if err != nil {
			t.Fatal(err)
		}
		if !CheckPassword(h, pw) {
			t.Fatalf("%d-byte password does not check", len(pw))
		}
		if CheckPassword(h, pw+"!") || CheckPassword(h, pw[:len(pw)-1]) {
			t.Fatalf("%d-byte password: a different password checks", len(pw))
		}
	}
	// Every byte of a long password counts (bcrypt alone reads 72).
	h, _ := HashPassword(long, 4)
	if CheckPassword(h, long[:99]+"b") {
		t.Fatal("the 100th byte of a password is ignored")
	}
	if CheckPassword("", "") || CheckPassword("", "x") {
		t.Fatal("an account without a password accepted one")
	}
	if err := CheckPasswordParam(strings.Repeat("p", MaxPasswordLength+1)); err == nil {
		t.Fatal("an over-long password was accepted")
	}
	if err := CheckPasswordParam(""); err == nil {
		t.Fatal("an empty password was accepted")
	}
}

func TestTokensAreRandomAndHashed(t *testing.T) {
	a, b := newToken(accessPrefix), newToken(accessPrefix)
	if a == b || !strings.HasPrefix(a, accessPrefix) || len(a) < 40 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if h := HashToken(a); len(h) != 64 || h == HashToken(b) || strings.Contains(h, a) {
		t.Fatalf("hash %q", h)
	}
	if id := NewDeviceID(); len(id) != 10 || strings.ToUpper(id) != id {
		t.Fatalf("device ID %q", id)
	}
}

func TestOperationFlows(t *testing.T) {
	op := &Operation{Flows: [][]string{{StageRegistrationToken, StageDummy}, {StagePassword}}}
	if !op.offers(StageDummy) || op.offers("m.login.recaptcha") {
		t.Fatal("offers")
	}
	for _, c := range []struct {
		done []string
		want bool
	}{
		{nil, false},
		{[]string{StageDummy}, false},
		{[]string{StageDummy, StageRegistrationToken}, true},
		{[]string{StagePassword}, true},
	} {
		if got := op.complete(c.done); got != c.want {
			t.Errorf("complete(%v) = %v", c.done, got)
		}
	}
	r := op.response("s", nil, nil)
	enc, _ := json.Marshal(r)
	if string(enc) != `{"flows":[{"stages":["m.login.registration_token","m.login.dummy"]},{"stages":["m.login.password"]}],"params":{},"session":"s","completed":[]}` {
		t.Fatalf("response %s", enc)
	}
}

// TestAuthenticator runs the token life cycle against each database.
func TestAuthenticator(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		a := New(db, "example.org")
		if err := db.CreateAccount(ctx, "alice", "", false); err != nil {
			t.Fatal(err)
		}
		var s *Session
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			var err error
			s, err = a.Login(ctx, tx, LoginRequest{Localpart: "alice", DeviceID: "DEV"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.UserID != "@alice:example.org" || s.DeviceID != "DEV" || s.RefreshToken != "" {
			t.Fatalf("session %+v", s)
		}
		called := 0
		h := a.Required(func(w http.ResponseWriter, r *http.Request, d *Device) {
			called++
			if d.UserID != "@alice:example.org" || d.DeviceID != "DEV" || d.Localpart() != "alice" {
				t.Errorf("device %+v", d)
			}
		})
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+s.AccessToken)
		h(httptest.NewRecorder(), req)
		if called != 1 {
			t.Fatal("handler not called with a valid token")
		}
		// Optional: no token is anonymous, a bad token is refused.
		var anon *Device = &Device{}
		opt := a.Optional(func(w http.ResponseWriter, r *http.Request, d *Device) { anon = d })
		opt(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if anon != nil {
			t.Fatalf("anonymous request got device %+v", anon)
		}
		rec := httptest.NewRecorder()
		bad := httptest.NewRequest("GET", "/?access_token=nope", nil)
		opt(rec, bad)
		if rec.Code != 401 {
			t.Fatalf("optional with a bad token: %d", rec.Code)
		}
		// The database holds the hash, not the token.
		if _, err := db.LookupAccessToken(ctx, s.AccessToken); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("token found by its clear text: %v", err)
		}
		if _, err := db.LookupAccessToken(ctx, HashToken(s.AccessToken)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClientIP(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	r.Header.Add("X-Forwarded-For", "6.6.6.6, 1.2.3.4")
	if ip := New(nil, "x").ClientIP(r); ip != "10.0.0.1" {
		t.Fatalf("untrusted header: %q", ip)
	}
	trusting := New(nil, "x", WithXForwardedFor(true))
	if ip := trusting.ClientIP(r); ip != "1.2.3.4" {
		t.Fatalf("trusted header: %q, want the last entry", ip)
	}
	r.Header.Add("X-Forwarded-For", " 5.5.5.5 ")
	if ip := trusting.ClientIP(r); ip != "5.5.5.5" {
		t.Fatalf("two headers: %q, want the last one's", ip)
	}
	r.Header.Del("X-Forwarded-For")
	if ip := trusting.ClientIP(r); ip != "10.0.0.1" {
		t.Fatalf("no header: %q", ip)
	}
}
