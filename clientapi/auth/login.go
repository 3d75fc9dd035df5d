package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Limiter is what CheckLoginPassword needs of a rate limiter (an
// *ratelimit.Limiter): Peek says whether a key is over its limit, Check
// counts one more failure.
type Limiter interface {
	Peek(key string) error
	Check(key string) error
}

// CheckLoginPassword checks the identifier and password of an
// m.login.password login body and returns the user's localpart. A wrong
// user or password is 403 M_FORBIDDEN (the same answer for both, so that it
// does not tell which accounts exist), a deactivated account 403
// M_USER_DEACTIVATED, a third-party identifier 403 M_FORBIDDEN. failed,
// when not nil, limits failed attempts per account.
func (a *Authenticator) CheckLoginPassword(ctx context.Context, body json.RawMessage, failed Limiter) (string, error) {
	user, password, err := parsePasswordFields(body)
	if err != nil {
		return "", err
	}
	lp, ok := a.localpartOf(user)
	if !ok {
		CheckPassword("", password)
		return "", ErrBadPassword
	}
	if failed != nil {
		// Before the password: guessing stops once the account's budget
		// of failures is spent, even for the right password.
		if err := failed.Peek(strings.ToLower(lp)); err != nil {
			return "", err
		}
	}
	fail := func() (string, error) {
		if failed != nil {
			_ = failed.Check(strings.ToLower(lp)) // counts the failure
		}
		return "", ErrBadPassword
	}
	acct, err := a.db.GetAccount(ctx, lp)
	if errors.Is(err, storage.ErrNotFound) && strings.ToLower(lp) != lp {
		// Registration lowercases usernames; people type them as they like.
		lp = strings.ToLower(lp)
		acct, err = a.db.GetAccount(ctx, lp)
	}
	if errors.Is(err, storage.ErrNotFound) {
		CheckPassword("", password)
		return fail()
	}
	if err != nil {
		return "", err
	}
	if !CheckPassword(acct.PasswordHash, password) {
		return fail()
	}
	if acct.Deactivated {
		return "", httputil.NewError(http.StatusForbidden, httputil.CodeUserDeactivated, "this account has been deactivated")
	}
	return lp, nil
}
