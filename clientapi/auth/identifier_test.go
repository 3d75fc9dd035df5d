package auth

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// FuzzParsePasswordFields: any body gives a user and password or a Matrix
// error, never a panic. Run with
// go test -run='^$' -fuzz=FuzzParsePasswordFields -parallel=1 ./clientapi/auth/
func FuzzParsePasswordFields(f *testing.F) {
	for _, seed := range []string{
		`{"identifier":{"type":"m.id.user","user":"alice"},"password":"x"}`,
		`{"user":"@alice:example.org","password":"x"}`,
		`{"medium":"email","address":"a@b"}`,
		`{"identifier":{"type":"m.id.thirdparty"}}`,
		`{"identifier":null,"password":null}`,
		`{"identifier":[],"password":1}`,
		`[]`, `null`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	a := New(nil, "example.org")
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return // ReadJSON refuses these before
		}
		user, _, err := parsePasswordFields(body)
		if err != nil {
			if _, ok := errors.AsType[*httputil.Error](err); !ok {
				t.Fatalf("error %v is not a Matrix error", err)
			}
			return
		}
		a.localpartOf(user)
	})
}

func TestLocalpartOf(t *testing.T) {
	a := New(nil, "example.org:8448")
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"alice", "alice", true},
		{"@alice:example.org:8448", "alice", true},
		{"@alice:example.org", "", false},
		{"@alice", "", false},
		{"@:example.org:8448", "", false},
		{"", "", false},
	} {
		got, ok := a.localpartOf(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("localpartOf(%q) = %q, %v", c.in, got, ok)
		}
	}
}
