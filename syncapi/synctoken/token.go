// Package synctoken reads and writes the tokens of /sync and of
// pagination (client-server-api "Syncing", "Getting events for a room"):
// since and next_batch, prev_batch, the from and to of /messages, the
// start and end of /context, and the at of /members. syncapi issues them;
// clientapi reads them too.
//
// Everything /sync returns except typing is ordered by one number: the
// global stream position (storage.(*Tx).NextStreamPos), taken by room
// events, receipts, account data and presence alike, in commit order. So a
// token is mostly that number:
//
//	s<pos>                    a pagination token (prev_batch, /messages
//	                          start and end, /context start and end)
//	s<pos>_<typing>_<inst>    a sync token (next_batch)
//
// A token at position p stands between the events at p and p+1: /sync with
// since=s<p> returns what was written after p, and /messages from s<p>
// returns events at or before p going backwards, after p going forwards.
//
// Typing notifications are not stored (they expire within seconds), so they
// have no stream position: each process numbers the typing changes it
// sees (<typing>) and names itself with a random instance ID (<inst>),
// fixed for the life of the process. A sync token from another process or
// from before a restart has a foreign <inst>; /sync then sends the current
// typing state of every room instead of the changes.
package synctoken

import (
	"crypto/rand"
	"strconv"
	"strings"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// Token is a parsed token.
type Token struct {
	Pos      int64
	Typing   int64
	Instance string // "" in pagination tokens
	Raw      string // the text parsed, when parsed
}

// String formats t: a sync token when it has an instance, else a
// pagination token.
func (t Token) String() string {
	b := make([]byte, 0, 32)
	b = append(b, 's')
	b = strconv.AppendInt(b, t.Pos, 10)
	if t.Instance != "" {
		b = append(b, '_')
		b = strconv.AppendInt(b, t.Typing, 10)
		b = append(b, '_')
		b = append(b, t.Instance...)
	}
	return string(b)
}

// Pagination formats the pagination token of position pos.
func Pagination(pos int64) string { return Token{Pos: pos}.String() }

// Parse parses either form, given as the query parameter param. A
// malformed token is 400 M_INVALID_PARAM naming the parameter, as Synapse
// answers.
func Parse(param, s string) (Token, error) {
	bad := func() (Token, error) {
		return Token{}, httputil.InvalidParam("invalid " + param + " token " + strconv.Quote(s))
	}
	rest, ok := strings.CutPrefix(s, "s")
	if !ok {
		return bad()
	}
	t := Token{Raw: s}
	posText, typingPart, hasTyping := strings.Cut(rest, "_")
	pos, err := strconv.ParseInt(posText, 10, 64)
	// Pagination tokens may be negative: history received late over
	// federation (backfill) sorts before position 1.
	if err != nil || (pos < 0 && hasTyping) || posText != strconv.FormatInt(pos, 10) {
		return bad()
	}
	t.Pos = pos
	if hasTyping {
		typingText, inst, ok := strings.Cut(typingPart, "_")
		typing, err := strconv.ParseInt(typingText, 10, 64)
		if !ok || err != nil || typing < 0 || !validInstance(inst) {
			return bad()
		}
		t.Typing, t.Instance = typing, inst
	}
	return t, nil
}

// instanceLen is the length of an instance ID: 8 characters of [a-z0-9],
// 41 bits, plenty to tell a few processes and restarts apart.
const instanceLen = 8

// NewInstanceID returns a new random instance ID, for a process to put in
// the sync tokens it issues.
func NewInstanceID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [instanceLen]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func validInstance(s string) bool {
	if len(s) != instanceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
