package federation_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestOpenID: a user of A gets an OpenID token from A's client API, and a
// third party (an unsigned HTTPS request) learns from A's federation API
// whose it is; unknown, expired and misplaced tokens are refused.
func TestOpenID(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	alice, aliceToken := a.RegisterUser(t, "alice")
	bob, _ := a.RegisterUser(t, "bob")
	requestPath := func(user string) string {
		return "/_matrix/client/v3/user/" + url.PathEscape(user) + "/openid/request_token"
	}
	userinfo := func(s *servertest.Server, token string) (int, []byte) {
		return rawFed(t, s, "/_matrix/federation/v1/openid/userinfo?access_token="+url.QueryEscape(token))
	}

	var tok struct {
		AccessToken      string `json:"access_token"`
		TokenType        string `json:"token_type"`
		MatrixServerName string `json:"matrix_server_name"`
		ExpiresIn        int    `json:"expires_in"`
	}
	a.DoJSON(t, http.MethodPost, requestPath(alice), aliceToken, map[string]any{}, &tok)
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.MatrixServerName != a.Name || tok.ExpiresIn != 3600 {
		t.Fatalf("token %+v", tok)
	}
	status, body := userinfo(a, tok.AccessToken)
	if sub := string(mustField(t, body, "sub")); status != 200 || sub != `"`+alice+`"` {
		t.Fatalf("userinfo: %d %s", status, body)
	}
	// Each request makes a new token; the first stays good. A client that
	// sends no body gets one too.
	var tok2 struct {
		AccessToken string `json:"access_token"`
	}
	a.DoJSON(t, http.MethodPost, requestPath(alice), aliceToken, nil, &tok2)
	if tok2.AccessToken == "" || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("second token %q", tok2.AccessToken)
	}
	for _, tk := range []string{tok.AccessToken, tok2.AccessToken} {
		if status, body := userinfo(a, tk); status != 200 {
			t.Errorf("userinfo: %d %s", status, body)
		}
	}

	// An expired token (issued two hours ago), an unknown one, an access
	// token, A's token at B, no token.
	expired, err := auth.IssueOpenIDToken(ctxT(t), a.DB(), alice, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]struct {
		s     *servertest.Server
		token string
	}{
		"expired":         {a, expired},
		"unknown":         {a, "myloi_nonsense"},
		"an access token": {a, aliceToken},
		"A's token at B":  {b, tok.AccessToken},
	} {
		status, body := userinfo(c.s, c.token)
		wantErr(t, what, status, body, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	}
	status, body = rawFed(t, a, "/_matrix/federation/v1/openid/userinfo")
	wantErr(t, "no token", status, body, http.StatusUnauthorized, "M_MISSING_TOKEN")

	// The OpenID token is no access token.
	status, body = a.Do(t, http.MethodGet, "/_matrix/client/v3/account/whoami", tok.AccessToken, nil)
	wantErr(t, "OpenID token as access token", status, body, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")

	// Only for oneself, with a token, and a body that is an object.
	for _, c := range []struct {
		what, user, token string
		body              any
		status            int
		code              string
	}{
		{"for another user", bob, aliceToken, map[string]any{}, 403, "M_FORBIDDEN"},
		{"without a token", alice, "", map[string]any{}, 401, "M_MISSING_TOKEN"},
		{"a list body", alice, aliceToken, `[]`, 400, "M_BAD_JSON"},
		{"not JSON", alice, aliceToken, `{`, 400, "M_NOT_JSON"},
	} {
		status, body := a.Do(t, http.MethodPost, requestPath(c.user), c.token, c.body)
		wantErr(t, c.what, status, body, c.status, c.code)
	}
}
