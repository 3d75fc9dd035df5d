package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// MaxPasswordLength bounds passwords, as Synapse does (512).
const MaxPasswordLength = 512

// bcryptInput is what bcrypt hashes for a password. bcrypt reads at most 72
// bytes; a longer password is first reduced to the base64 of its SHA-256 (44
// bytes) so that every byte of it counts. Passwords of up to 72 bytes are
// hashed as they are, which keeps hashes made by `myelin create-account`
// and by other bcrypt users valid.
func bcryptInput(password string) []byte {
	if len(password) <= 72 {
		return []byte(password)
	}
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// CheckPasswordParam validates a password chosen by a user: 400
// M_INVALID_PARAM when over MaxPasswordLength, M_MISSING_PARAM when empty.
func CheckPasswordParam(password string) error {
	if password == "" {
		return httputil.MissingParam("the password is missing or empty")
	}
	if len(password) > MaxPasswordLength {
		return httputil.InvalidParam(fmt.Sprintf("the password is longer than %d bytes", MaxPasswordLength))
	}
	return nil
}

// HashPassword returns the bcrypt hash of password at cost.
func HashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword(bcryptInput(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether password matches hash. An empty hash (an
// account without a password) matches nothing; the time taken is that of a
// real check either way, so that it does not tell which accounts exist.
func CheckPassword(hash, password string) bool {
	if hash == "" || len(password) > MaxPasswordLength {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), bcryptInput(password)) == nil
}

// dummyHash is compared against when there is no real hash, so that an
// unknown user costs as much time as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	if err != nil {
		panic(err)
	}
	return h
})

// ErrBadPassword is the 403 of a wrong user or password.
var ErrBadPassword = httputil.NewError(http.StatusForbidden, httputil.CodeForbidden, "invalid username or password")
