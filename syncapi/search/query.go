package search

// The search term (search_term) language, what Synapse accepts on
// PostgreSQL: words, "quoted phrases", -excluded words or phrases, and OR
// between alternatives. Words and phrases separated by spaces must all
// match; "a OR b c" means (a or b) and c.

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what one search term may ask for.
const (
	maxTerms      = 32
	maxTermLength = 256
)

// Term is a word or a phrase of a search term.
type Term struct {
	Text   string
	Phrase bool
	// prefix: also match longer words starting with Text (set by the
	// query builder for the last word).
	prefix bool
}

// Parsed is a parsed search term: every clause of Must must match (a
// clause matches when one of its terms does), and no term of MustNot.
type Parsed struct {
	Must    [][]Term
	MustNot []Term
}

// ParseTerm parses a search term. It never fails: text that is not the
// language's is taken as words (an unclosed quote runs to the end).
func ParseTerm(s string) Parsed {
	var (
		p         Parsed
		orPending bool
		n         int
	)
	for len(s) > 0 && n < maxTerms {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			break
		}
		negated := false
		if s[0] == '-' {
			negated = true
			s = s[1:]
		}
		var t Term
		if len(s) > 0 && s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t, s = Term{Text: s[1:], Phrase: true}, ""
			} else {
				t, s = Term{Text: s[1 : 1+end], Phrase: true}, s[2+end:]
			}
		} else {
			end := strings.IndexFunc(s, unicode.IsSpace)
			if end < 0 {
				end = len(s)
			}
			t, s = Term{Text: s[:end]}, s[end:]
		}
		t.Text = truncate(strings.TrimSpace(t.Text), maxTermLength)
		if t.Text == "" {
			continue
		}
		if !negated && !t.Phrase && strings.EqualFold(t.Text, "or") {
			orPending = len(p.Must) > 0
			continue
		}
		n++
		if negated {
			p.MustNot = append(p.MustNot, t)
			orPending = false
			continue
		}
		if orPending {
			last := len(p.Must) - 1
			p.Must[last] = append(p.Must[last], t)
		} else {
			p.Must = append(p.Must, []Term{t})
		}
		orPending = false
	}
	return p
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
