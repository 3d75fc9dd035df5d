// Package fedauth is the request authentication of the Server-Server API
// (server-server-api "Request Authentication"): the JSON object a request's
// signature covers, and the X-Matrix Authorization header that carries the
// signature. The outbound client signs with it and the inbound middleware
// verifies with it; which keys are trusted is the caller's business.
package fedauth

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the authorization scheme of signed federation requests.
const Scheme = "X-Matrix"

// Header is one X-Matrix Authorization header.
type Header struct {
	Origin string
	// Destination is empty when the sender left it out (servers before
	// Matrix 1.3); receivers accept that for compatibility.
	Destination string
	Key         string // key ID, "ed25519:<version>"
	Sig         string // unpadded base64 signature
}

// String formats h as the spec asks senders to, for the widest
// compatibility: one space after the scheme, lower-case names, every value
// quoted, no whitespace around the commas. Server names, key IDs and base64
// never need escaping, but a quote or backslash would be escaped.
func (h Header) String() string {
	var b strings.Builder
	b.WriteString(Scheme + " ")
	b.WriteString(`origin=`)
	writeQuoted(&b, h.Origin)
	if h.Destination != "" {
		b.WriteString(`,destination=`)
		writeQuoted(&b, h.Destination)
	}
	b.WriteString(`,key=`)
	writeQuoted(&b, h.Key)
	b.WriteString(`,sig=`)
	writeQuoted(&b, h.Sig)
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// ErrNotXMatrix is returned (wrapped) by ParseXMatrix for an Authorization
// header of another scheme (a Bearer token, say).
var ErrNotXMatrix = errors.New("not an X-Matrix authorization")

// maxHeaderLen bounds the header ParseXMatrix reads. Real headers are about
// 250 bytes; net/http already limits all headers to 1 MiB.
const maxHeaderLen = 8192

// ParseXMatrix parses an Authorization header value of the X-Matrix scheme
// with the grammar of RFC 9110 section 11.4 as the spec summarises it: the
// scheme (case-insensitive), one or more spaces, then comma-separated
// name=value parameters with optional spaces and tabs around the commas
// (and, as RFC 9110 allows, around the '='). Names are case-insensitive;
// values are tokens or quoted strings with backslash escapes. Unknown
// parameters are ignored; origin, key and sig are required and no
// parameter may appear twice.
//
// Unquoted values may also hold ':' (the spec's compatibility rule for
// older servers), and '/', '=', '[' and ']': base64 signatures and IPv6
// server names sent unquoted, which Synapse's parser accepts too.
func ParseXMatrix(value string) (Header, error) {
	var h Header
	if len(value) > maxHeaderLen {
		return h, fmt.Errorf("authorization header longer than %d bytes", maxHeaderLen)
	}
	scheme, rest, _ := strings.Cut(value, " ")
	if !strings.EqualFold(scheme, Scheme) {
		return h, fmt.Errorf("%w: scheme %q", ErrNotXMatrix, truncate(scheme))
	}
	p := parser{s: rest}
	seen := map[string]bool{}
	for {
		p.skipSpace()
		if p.done() {
			break
		}
		if p.peek() == ',' { // an empty list element, which RFC 9110 lets recipients skip
			p.i++
			continue
		}
		name, err := p.token()
		if err != nil {
			return h, fmt.Errorf("parameter name: %w", err)
		}
		p.skipSpace()
		if p.done() || p.peek() != '=' {
			return h, fmt.Errorf("parameter %q has no '=' and value", truncate(name))
		}
		p.i++
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return h, fmt.Errorf("parameter %q: %w", truncate(name), err)
		}
		p.skipSpace()
		if !p.done() {
			if p.peek() != ',' {
				return h, fmt.Errorf("unexpected %q after parameter %q (parameters are separated by commas)", p.peek(), truncate(name))
			}
			p.i++
		}
		name = strings.ToLower(name)
		if seen[name] {
			return h, fmt.Errorf("parameter %q appears twice", truncate(name))
		}
		seen[name] = true
		switch name {
		case "origin":
			h.Origin = val
		case "destination":
			h.Destination = val
		case "key":
			h.Key = val
		case "sig":
			h.Sig = val
		}
	}
	for _, req := range []struct{ name, val string }{{"origin", h.Origin}, {"key", h.Key}, {"sig", h.Sig}} {
		if req.val == "" {
			return h, fmt.Errorf("missing or empty parameter %q", req.name)
		}
	}
	if seen["destination"] && h.Destination == "" {
		return h, errors.New("empty parameter \"destination\"")
	}
	return h, nil
}

// parser walks the parameter list.
type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }

// skipSpace skips RFC 9110's OWS: spaces and tabs.
func (p *parser) skipSpace() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// token reads an RFC 9110 token (parameter names).
func (p *parser) token() (string, error) {
	start := p.i
	for !p.done() && isTchar(p.peek()) {
		p.i++
	}
	if p.i == start {
		if p.done() {
			return "", errors.New("missing")
		}
		return "", fmt.Errorf("unexpected %q", p.peek())
	}
	return p.s[start:p.i], nil
}

// value reads a quoted string or an unquoted value.
func (p *parser) value() (string, error) {
	if p.done() {
		return "", errors.New("missing value")
	}
	if p.peek() != '"' {
		start := p.i
		for !p.done() && isUnquotedValueChar(p.peek()) {
			p.i++
		}
		if p.i == start {
			return "", fmt.Errorf("unexpected %q at the start of the value", p.peek())
		}
		return p.s[start:p.i], nil
	}
	p.i++ // opening quote
	var b strings.Builder
	for {
		if p.done() {
			return "", errors.New("unterminated quoted value")
		}
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
			if p.done() {
				return "", errors.New("unterminated quoted value (ends in a backslash)")
			}
			e := p.peek()
			if !isQuotedPairChar(e) {
				return "", fmt.Errorf("invalid escaped character %q", e)
			}
			b.WriteByte(e)
			p.i++
		case isQdtext(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("invalid character %q in quoted value", c)
		}
	}
}

// isTchar is RFC 9110's tchar.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isUnquotedValueChar(c byte) bool {
	return isTchar(c) || c == ':' || c == '/' || c == '=' || c == '[' || c == ']'
}

// isQdtext is RFC 9110's qdtext: HTAB, SP, visible characters but '"' and
// '\', and obs-text (bytes 0x80-0xFF).
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E) || c >= 0x80
}

func isQuotedPairChar(c byte) bool {
	return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7E) || c >= 0x80
}

// truncate keeps error messages about hostile input short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
