package pdu

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// MaxNestingDepth bounds how deeply arrays and objects may nest in any JSON
// this package reads. Synapse parses and encodes JSON recursively under
// Python's default recursion limit of 1000 frames, so no event nested deeper
// than that can exist in a room that a Synapse server took part in; using the
// same bound never refuses an event a Synapse server accepted, and it keeps
// the recursion of the canonicalizer (and of every later reader of the
// content) bounded whatever a remote server sends.
const MaxNestingDepth = 1000

// maxSafeInteger is 2^53-1, the largest integer the canonical JSON grammar
// allows (it is exactly representable as an IEEE double).
const maxSafeInteger = 1<<53 - 1

// JSONError reports JSON that is not acceptable, with the byte offset in
// the input where the problem was found.
type JSONError struct {
	Offset int
	Reason string
}

func (e *JSONError) Error() string {
	return fmt.Sprintf("bad JSON at offset %d: %s", e.Offset, e.Reason)
}

// CanonicalJSON re-encodes in as Canonical JSON (appendices "Canonical
// JSON"): object keys sorted by code point, no insignificant whitespace,
// UTF-8 rather than \u escapes except for control characters, and integers
// written plainly ("-0" becomes "0", "1e10" becomes "10000000000").
//
// It is lenient about numbers as room versions 1–5 require: integers of any
// size are kept, and a number with a fraction or exponent that is not an
// integer in the safe range is written as Python's repr() writes a float,
// which is what Synapse hashes and signs. Duplicate keys, invalid UTF-8,
// lone surrogate escapes and nesting deeper than MaxNestingDepth are
// refused in both modes.
func CanonicalJSON(in []byte) ([]byte, error) {
	c := canonicalizer{in: in}
	if err := c.run(); err != nil {
		return nil, err
	}
	return c.out, nil
}

// CanonicalJSONStrict is CanonicalJSON with the number rules that room
// versions 6 and later enforce: every number must be an integer in
// [-(2^53)+1, 2^53-1], written without a fraction or exponent.
func CanonicalJSONStrict(in []byte) ([]byte, error) {
	c := canonicalizer{in: in, strict: true}
	if err := c.run(); err != nil {
		return nil, err
	}
	return c.out, nil
}

// canonicalize is the form used inside the package: it also returns the
// members of the top-level object (nil if the value is not an object),
// located in the returned canonical bytes.
func canonicalize(in []byte, strict bool) ([]byte, []member, error) {
	return canonicalizeDropping(in, strict, "")
}

// canonicalizeDropping is canonicalize, leaving out the top-level member
// named drop (after checking it like the rest) if there is one. ParseEvent
// uses it to drop "unsigned" without copying the event again.
func canonicalizeDropping(in []byte, strict bool, drop string) ([]byte, []member, error) {
	c := canonicalizer{in: in, strict: strict, wantTop: true, dropTop: drop}
	if err := c.run(); err != nil {
		return nil, nil, err
	}
	return c.out, c.top, nil
}

// member is one key/value pair of a canonical JSON object: the key as it
// appears between the quotes (canonical escaping) and the value's bytes.
type member struct {
	key []byte
	val []byte
}

// pending is an object member while its object is being canonicalized: the
// decoded key (for sorting) and where `"key":value` sits in the output.
type pending struct {
	key        []byte
	start, end int
	valOff     int // offset of the value from start
}

type canonicalizer struct {
	in      []byte
	pos     int
	out     []byte
	strict  bool
	depth   int
	stack   []pending // members of the objects being built, innermost last
	tmp     []byte    // scratch for reordering members
	sbuf    []byte    // scratch for decoding escaped strings
	wantTop bool
	dropTop string
	top     []member
}

func (c *canonicalizer) fail(reason string) error {
	return &JSONError{Offset: c.pos, Reason: reason}
}

// stackPool recycles the canonicalizers' member stacks. A stack on the
// goroutine's stack would be better still, but it escapes (the methods
// take the canonicalizer by pointer), and a fresh one for every event was
// a noticeable share of the server's garbage under a burst of sends.
var stackPool = sync.Pool{New: func() any { s := make([]pending, 0, 32); return &s }}

// maxPooledStack bounds the stacks kept for reuse: a huge object's stack is
// left to the garbage collector.
const maxPooledStack = 1024

func (c *canonicalizer) run() error {
	c.out = make([]byte, 0, len(c.in))
	pooled := stackPool.Get().(*[]pending)
	c.stack = (*pooled)[:0]
	defer func() {
		if s := c.stack; cap(s) <= maxPooledStack {
			clear(s[:cap(s)]) // keep no reference to this input
			*pooled = s[:0]
			stackPool.Put(pooled)
		}
		c.stack = nil
	}()
	c.skipSpace()
	if err := c.value(); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos != len(c.in) {
		return c.fail("unexpected data after the JSON value")
	}
	return nil
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value() error {
	if c.pos >= len(c.in) {
		return c.fail("unexpected end of input")
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object()
	case ch == '[':
		return c.array()
	case ch == '"':
		_, err := c.str(false)
		return err
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	default:
		return c.fail(fmt.Sprintf("unexpected character %q", ch))
	}
}

func (c *canonicalizer) literal(word string) error {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(word)) {
		return c.fail("invalid literal")
	}
	c.pos += len(word)
	c.out = append(c.out, word...)
	return nil
}

func (c *canonicalizer) enter() error {
	c.depth++
	if c.depth > MaxNestingDepth {
		return c.fail(fmt.Sprintf("nesting deeper than %d levels", MaxNestingDepth))
	}
	return nil
}

func (c *canonicalizer) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		c.depth--
		return nil
	}
	for {
		c.skipSpace()
		if err := c.value(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.fail("unterminated array")
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			c.depth--
			return nil
		default:
			return c.fail("expected ',' or ']' in array")
		}
	}
}

func (c *canonicalizer) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	top := c.depth == 1
	c.pos++
	objStart := len(c.out)
	c.out = append(c.out, '{')
	base := len(c.stack)
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		c.depth--
		if top && c.wantTop {
			c.top = []member{}
		}
		return nil
	}
	for {
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return c.fail("expected a string object key")
		}
		start := len(c.out)
		key, err := c.str(true)
		if err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return c.fail("expected ':' after object key")
		}
		c.pos++
		c.out = append(c.out, ':')
		valOff := len(c.out) - start
		c.skipSpace()
		if err := c.value(); err != nil {
			return err
		}
		c.stack = append(c.stack, pending{key: key, start: start, end: len(c.out), valOff: valOff})
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.fail("unterminated object")
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.out = append(c.out, ',')
			continue
		}
		if c.in[c.pos] == '}' {
			c.pos++
			break
		}
		return c.fail("expected ',' or '}' in object")
	}

	ms := c.stack[base:]
	sorted := true
	for i := 1; i < len(ms); i++ {
		if bytes.Compare(ms[i-1].key, ms[i].key) >= 0 {
			sorted = false
			break
		}
	}
	if !sorted {
		slices.SortStableFunc(ms, func(a, b pending) int { return bytes.Compare(a.key, b.key) })
		for i := 1; i < len(ms); i++ {
			if bytes.Equal(ms[i-1].key, ms[i].key) {
				return c.fail(fmt.Sprintf("duplicate object key %q", ms[i].key))
			}
		}
	}
	drop := -1
	if top && c.dropTop != "" {
		for i := range ms {
			if string(ms[i].key) == c.dropTop {
				drop = i
			}
		}
	}
	if !sorted || drop >= 0 {
		// Rewrite the members in key order. Offsets are relative to
		// objStart so that they survive the copy into tmp.
		c.tmp = append(c.tmp[:0], c.out[objStart:]...)
		c.out = c.out[:objStart+1]
		kept := ms[:0]
		for i, m := range ms {
			if i == drop {
				continue
			}
			if len(kept) > 0 {
				c.out = append(c.out, ',')
			}
			n := len(c.out)
			c.out = append(c.out, c.tmp[m.start-objStart:m.end-objStart]...)
			m.start, m.end = n, len(c.out)
			kept = append(kept, m)
		}
		ms = kept
	}
	c.out = append(c.out, '}')
	if top && c.wantTop {
		c.top = make([]member, len(ms))
		for i, m := range ms {
			c.top[i] = member{key: c.out[m.start+1 : m.start+m.valOff-2], val: c.out[m.start+m.valOff : m.end]}
		}
	}
	c.stack = c.stack[:base]
	c.depth--
	return nil
}

// str reads a string at c.pos and appends its canonical form to c.out. When
// key is true it returns the decoded string (for sorting object keys).
func (c *canonicalizer) str(key bool) ([]byte, error) {
	start := c.pos
	i := c.pos + 1
	// Fast path: a string without escapes is already canonical once it is
	// known to be valid UTF-8 without raw control characters.
	for i < len(c.in) {
		b := c.in[i]
		if b == '"' {
			c.out = append(c.out, c.in[start:i+1]...)
			c.pos = i + 1
			return c.in[start+1 : i], nil
		}
		if b == '\\' {
			break
		}
		if b < 0x20 {
			c.pos = i
			return nil, c.fail("control character in string")
		}
		if b < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(c.in[i:])
		if r == utf8.RuneError && size <= 1 {
			c.pos = i
			return nil, c.fail("invalid UTF-8 in string")
		}
		i += size
	}
	if i >= len(c.in) {
		c.pos = i
		return nil, c.fail("unterminated string")
	}
	// Slow path: decode into sbuf, then write the canonical escaping.
	c.sbuf = append(c.sbuf[:0], c.in[start+1:i]...)
	for {
		if i >= len(c.in) {
			c.pos = i
			return nil, c.fail("unterminated string")
		}
		b := c.in[i]
		switch {
		case b == '"':
			c.pos = i + 1
			c.out = appendString(c.out, c.sbuf)
			if key {
				return bytes.Clone(c.sbuf), nil
			}
			return nil, nil
		case b == '\\':
			if i+1 >= len(c.in) {
				c.pos = i
				return nil, c.fail("unterminated string")
			}
			esc := c.in[i+1]
			i += 2
			switch esc {
			case '"', '\\', '/':
				c.sbuf = append(c.sbuf, esc)
			case 'b':
				c.sbuf = append(c.sbuf, '\b')
			case 'f':
				c.sbuf = append(c.sbuf, '\f')
			case 'n':
				c.sbuf = append(c.sbuf, '\n')
			case 'r':
				c.sbuf = append(c.sbuf, '\r')
			case 't':
				c.sbuf = append(c.sbuf, '\t')
			case 'u':
				r, ok := hex4(c.in, i)
				if !ok {
					c.pos = i - 2
					return nil, c.fail("invalid \\u escape")
				}
				i += 4
				if r >= 0xDC00 && r <= 0xDFFF {
					c.pos = i - 6
					return nil, c.fail("lone low surrogate in \\u escape")
				}
				if r >= 0xD800 && r <= 0xDBFF {
					var lo rune
					if i+1 < len(c.in) && c.in[i] == '\\' && c.in[i+1] == 'u' {
						lo, ok = hex4(c.in, i+2)
					} else {
						ok = false
					}
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						c.pos = i - 6
						return nil, c.fail("lone high surrogate in \\u escape")
					}
					i += 6
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				}
				c.sbuf = utf8.AppendRune(c.sbuf, r)
			default:
				c.pos = i - 2
				return nil, c.fail(fmt.Sprintf("invalid escape \\%c", esc))
			}
		case b < 0x20:
			c.pos = i
			return nil, c.fail("control character in string")
		case b < utf8.RuneSelf:
			c.sbuf = append(c.sbuf, b)
			i++
		default:
			r, size := utf8.DecodeRune(c.in[i:])
			if r == utf8.RuneError && size <= 1 {
				c.pos = i
				return nil, c.fail("invalid UTF-8 in string")
			}
			c.sbuf = append(c.sbuf, c.in[i:i+size]...)
			i += size
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, ch := range b[i : i+4] {
		r <<= 4
		switch {
		case ch >= '0' && ch <= '9':
			r |= rune(ch - '0')
		case ch >= 'a' && ch <= 'f':
			r |= rune(ch - 'a' + 10)
		case ch >= 'A' && ch <= 'F':
			r |= rune(ch - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// appendString appends s (valid UTF-8) as a canonical JSON string: only
// '"', '\' and control characters are escaped, with the short escapes where
// JSON has them and lower-case \u00XX otherwise (the appendices' grammar).
func appendString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	last := 0
	for i, b := range s {
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		last = i + 1
		switch b {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
		}
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}

func (c *canonicalizer) number() error {
	start := c.pos
	i := c.pos
	neg := false
	if c.in[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	switch {
	case i < len(c.in) && c.in[i] == '0':
		i++
	case i < len(c.in) && c.in[i] >= '1' && c.in[i] <= '9':
		for i < len(c.in) && c.in[i] >= '0' && c.in[i] <= '9' {
			i++
		}
	default:
		c.pos = i
		return c.fail("invalid number")
	}
	intEnd := i
	isFloat := false
	if i < len(c.in) && c.in[i] == '.' {
		isFloat = true
		i++
		d := i
		for i < len(c.in) && c.in[i] >= '0' && c.in[i] <= '9' {
			i++
		}
		if i == d {
			c.pos = i
			return c.fail("invalid number: no digits after '.'")
		}
	}
	if i < len(c.in) && (c.in[i] == 'e' || c.in[i] == 'E') {
		isFloat = true
		i++
		if i < len(c.in) && (c.in[i] == '+' || c.in[i] == '-') {
			i++
		}
		d := i
		for i < len(c.in) && c.in[i] >= '0' && c.in[i] <= '9' {
			i++
		}
		if i == d {
			c.pos = i
			return c.fail("invalid number: no digits in exponent")
		}
	}
	c.pos = i
	text := c.in[start:i]
	digits := c.in[intStart:intEnd]

	if !isFloat {
		if c.strict && !intInSafeRange(digits) {
			c.pos = start
			return c.fail(fmt.Sprintf("integer %s outside [-(2^53)+1, 2^53-1]", text))
		}
		if neg && len(digits) == 1 && digits[0] == '0' {
			c.out = append(c.out, '0')
			return nil
		}
		c.out = append(c.out, text...)
		return nil
	}
	if c.strict {
		c.pos = start
		return c.fail(fmt.Sprintf("number %s is not an integer (floats are not allowed in this room version)", text))
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		c.pos = start
		return c.fail(fmt.Sprintf("number %s out of range", text))
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
		c.out = strconv.AppendInt(c.out, int64(f), 10)
		return nil
	}
	c.out = appendPythonFloat(c.out, f)
	return nil
}

// intInSafeRange reports whether the decimal digits (no sign, no leading
// zeros) are at most 2^53-1.
func intInSafeRange(digits []byte) bool {
	const max = "9007199254740991"
	if len(digits) != len(max) {
		return len(digits) < len(max)
	}
	return string(digits) <= max
}

// appendPythonFloat writes f as Python's repr(float) does (shortest
// round-trip digits; exponent form below 1e-4 and from 1e16 up, with a sign
// and at least two exponent digits; ".0" on integral values), which is how
// Synapse encodes floats in the canonical JSON of room versions 1–5.
func appendPythonFloat(dst []byte, f float64) []byte {
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	if f == 0 {
		return append(dst, "0.0"...)
	}
	e := strconv.AppendFloat(nil, f, 'e', -1, 64) // d.ddddde±XX
	mant, exp, _ := bytes.Cut(e, []byte("e"))
	digits := make([]byte, 0, len(mant))
	for _, ch := range mant {
		if ch != '.' {
			digits = append(digits, ch)
		}
	}
	x, _ := strconv.Atoi(string(exp))
	decpt := x + 1 // position of the decimal point relative to digits
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			dst = append(dst, '0', '.')
			for range -decpt {
				dst = append(dst, '0')
			}
			return append(dst, digits...)
		case decpt >= len(digits):
			dst = append(dst, digits...)
			for range decpt - len(digits) {
				dst = append(dst, '0')
			}
			return append(dst, '.', '0')
		default:
			dst = append(dst, digits[:decpt]...)
			dst = append(dst, '.')
			return append(dst, digits[decpt:]...)
		}
	}
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	if x < 0 {
		dst = append(dst, '-')
		x = -x
	} else {
		dst = append(dst, '+')
	}
	if x < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(x), 10)
}
