package pushrules

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Glob-style matching (appendices "Glob-style matching": '*' matches zero
// or more characters, '?' exactly one), case-insensitively. A pattern is
// compiled once; the value it is matched against is already lowercased
// (Event lowercases each string once), so a match does no allocation.
//
// Two modes: the whole value must match (event_match on any key but
// content.body), or, for content.body and content rules, some substring
// that starts and ends at a word boundary: the start or end of the value,
// or a character outside [A-Za-z0-9_].

// Glob is a compiled pattern.
type Glob struct {
	pattern      string // lowercased
	wordBoundary bool
	kind         globKind
	lit          string         // literal, prefix or suffix text
	re           *regexp.Regexp // general word-boundary patterns
}

type globKind uint8

const (
	globLiteral  globKind = iota // no wildcards
	globAny                      // "*" alone (whole value)
	globPrefix                   // "abc*"
	globSuffix                   // "*abc"
	globWildcard                 // anything else
)

// CompileGlob compiles pattern. wordBoundary selects the content.body
// mode.
func CompileGlob(pattern string, wordBoundary bool) *Glob {
	p := strings.ToLower(pattern)
	g := &Glob{pattern: p, wordBoundary: wordBoundary, kind: globWildcard}
	stars, qs := strings.Count(p, "*"), strings.Count(p, "?")
	switch {
	case stars == 0 && qs == 0:
		g.kind, g.lit = globLiteral, p
	case wordBoundary:
		// Lowercasing made p valid UTF-8, so this compiles; a nil re
		// (never reached) would match nothing.
		g.re, _ = regexp.Compile(`(?s)(?:^|\W)` + globRegexp(p) + `(?:\W|$)`)
	case p == "*":
		g.kind = globAny
	case qs == 0 && stars == 1 && strings.HasSuffix(p, "*"):
		g.kind, g.lit = globPrefix, p[:len(p)-1]
	case qs == 0 && stars == 1 && strings.HasPrefix(p, "*"):
		g.kind, g.lit = globSuffix, p[1:]
	}
	return g
}

// globRegexp translates a glob into a regular expression matching the
// same strings (without anchors).
func globRegexp(p string) string {
	var b strings.Builder
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '*' || p[i] == '?' {
			b.WriteString(regexp.QuoteMeta(p[start:i]))
			if p[i] == '*' {
				b.WriteString(`.*?`)
			} else {
				b.WriteString(`.`)
			}
			start = i + 1
		}
	}
	b.WriteString(regexp.QuoteMeta(p[start:]))
	return b.String()
}

// Match reports whether the lowercased value matches.
func (g *Glob) Match(lower string) bool {
	if g.wordBoundary {
		if g.kind == globLiteral {
			return containsWord(lower, g.lit)
		}
		return g.re != nil && g.re.MatchString(lower)
	}
	switch g.kind {
	case globLiteral:
		return lower == g.lit
	case globAny:
		return true
	case globPrefix:
		return strings.HasPrefix(lower, g.lit)
	case globSuffix:
		return strings.HasSuffix(lower, g.lit)
	}
	return wildcardMatch(g.pattern, lower)
}

// wildcardMatch matches the whole of s against the glob p, '?' standing
// for one character (rune). It backtracks only to the last '*', so it runs
// in O(len(p)·len(s)) at worst and about linear time in practice.
func wildcardMatch(p, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				pi++
				si += n
				continue
			default:
				_, pn := utf8.DecodeRuneInString(p[pi:])
				_, sn := utf8.DecodeRuneInString(s[si:])
				if pn == sn && p[pi:pi+pn] == s[si:si+sn] {
					pi += pn
					si += sn
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' swallow one more character and try again.
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// containsWord reports whether word occurs in s between word boundaries.
func containsWord(s, word string) bool {
	for from := 0; from <= len(s); {
		i := strings.Index(s[from:], word)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(word)
		// Only at character boundaries (the empty word matches anywhere).
		atRune := (i == len(s) || utf8.RuneStart(s[i])) && (end == len(s) || utf8.RuneStart(s[end]))
		if atRune && (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		from = i + 1
	}
	return false
}

// isWordByte reports whether c is in [A-Za-z0-9_]. Bytes of multi-byte
// UTF-8 characters are not: such characters are word boundaries.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
