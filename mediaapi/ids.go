package mediaapi

import (
	"crypto/rand"
	"net/http"
	"strings"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
)

// mediaIDLength is the length of the media IDs this server makes: 24
// characters of 62 are about 143 bits, which no one guesses.
const mediaIDLength = 24

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newMediaID returns a fresh random media ID.
func newMediaID() string {
	return randomString(mediaIDLength)
}

func randomString(n int) string {
	var b strings.Builder
	buf := make([]byte, n*2)
	for b.Len() < n {
		_, _ = rand.Read(buf) // never fails (Go 1.24+)
		for _, c := range buf {
			// 248 = 4 × 62: rejecting the bytes above keeps the
			// characters uniformly likely.
			if c < 248 && b.Len() < n {
				b.WriteByte(idAlphabet[int(c)%len(idAlphabet)])
			}
		}
	}
	return b.String()
}

// maxMediaIDLength bounds the media IDs accepted from others.
const maxMediaIDLength = 255

// validMediaID checks the spec's rule for media IDs: only A-Za-z0-9, '_'
// and '-' (content-repo "Security considerations": no path traversal).
func validMediaID(id string) bool {
	if id == "" || len(id) > maxMediaIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// mediaRef reads and checks the {serverName} and {mediaId} path variables.
// A name that cannot exist is 404 M_NOT_FOUND, as for an unknown item.
func mediaRef(r *http.Request) (origin, mediaID string, err error) {
	origin, mediaID = httputil.PathVar(r, "serverName"), httputil.PathVar(r, "mediaId")
	if config.ValidServerName(origin) != nil {
		return "", "", httputil.NotFound("not a valid server name: " + origin)
	}
	if !validMediaID(mediaID) {
		return "", "", httputil.NotFound("not a valid media ID")
	}
	return origin, mediaID, nil
}

func mxcURI(origin, mediaID string) string { return "mxc://" + origin + "/" + mediaID }
