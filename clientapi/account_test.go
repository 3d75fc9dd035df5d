package clientapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// errBody is a Matrix error response.
type errBody struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// wantErr checks that a response is the Matrix error wantCode with status
// wantStatus and a message.
func wantErr(t *testing.T, status int, raw []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(raw, &e); err != nil || status != wantStatus || e.Errcode != wantCode || e.Error == "" {
		t.Fatalf("got %d %s, want %d %s with a message", status, raw, wantStatus, wantCode)
	}
}

func TestRegisterUserAndWhoami(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	userID, token := s.RegisterUser(t, "alice")
	if userID != "@alice:"+s.Name {
		t.Fatalf("user ID %q", userID)
	}
	var who struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
		IsGuest  *bool  `json:"is_guest"`
	}
	s.DoJSON(t, "GET", "/_matrix/client/v3/account/whoami", token, nil, &who)
	if who.UserID != userID || who.DeviceID == "" || who.IsGuest == nil || *who.IsGuest {
		t.Fatalf("whoami %+v", who)
	}
	token2, dev2 := s.Login(t, "alice")
	if token2 == token || dev2 == who.DeviceID {
		t.Fatalf("login reused the token or device")
	}
	status, raw := s.Do(t, "GET", "/_matrix/client/v3/account/whoami", "", nil)
	wantErr(t, status, raw, http.StatusUnauthorized, "M_MISSING_TOKEN")
	status, raw = s.Do(t, "GET", "/_matrix/client/v3/account/whoami", "nonsense", nil)
	wantErr(t, status, raw, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
}
