package synctoken

import (
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/internal/httputil"
)

func TestTokens(t *testing.T) {
	for _, tok := range []Token{{Pos: 0}, {Pos: 42}, {Pos: -17}, {Pos: 7, Typing: 3, Instance: "abcd1234"}} {
		got, err := Parse("since", tok.String())
		if err != nil || got.Pos != tok.Pos || got.Typing != tok.Typing || got.Instance != tok.Instance || got.Raw != tok.String() {
			t.Errorf("round trip of %q: %+v, %v", tok.String(), got, err)
		}
	}
	if got := Pagination(12); got != "s12" {
		t.Errorf("Pagination(12) = %q", got)
	}
	for _, bad := range []string{"", "s", "t1", "s01", "s+1", "s-1_2_abcd1234", "s-01", "s1_", "s1_2", "s1_2_", "s1_x_abcd1234", "s1_2_ABCD1234", "s1_2_abc", "s1_-2_abcd1234", "s99999999999999999999", "s1_2_abcd1234_9"} {
		_, err := Parse("since", bad)
		var he *httputil.Error
		if !errors.As(err, &he) || he.Code != "M_INVALID_PARAM" {
			t.Errorf("Parse(%q) = %v, want M_INVALID_PARAM", bad, err)
		}
	}
	if id := NewInstanceID(); !validInstance(id) {
		t.Errorf("instance ID %q is not valid", id)
	}
}
