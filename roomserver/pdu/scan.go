package pdu

import (
	"bytes"
	"iter"
	"slices"
	"strconv"
)

// Readers for JSON that this package has already canonicalized. Canonical
// JSON has no whitespace and only the escapes the appendices' grammar
// allows, so these can be small and allocation-free; they must never be
// given unchecked input.

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number or literal
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// skipString returns the index just past the string that starts at b[i].
// It jumps from quote to quote: a quote ends the string unless an odd
// number of backslashes precedes it.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		j += k
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// objectMembers yields the members of the canonical object obj; keys are
// the bytes between the quotes.
func objectMembers(obj []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		i := 1
		for i < len(obj) && obj[i] != '}' {
			kEnd := skipString(obj, i)
			key := obj[i+1 : kEnd-1]
			vEnd := skipValue(obj, kEnd+1)
			if !yield(key, obj[kEnd+1:vEnd]) {
				return
			}
			i = vEnd
			if i < len(obj) && obj[i] == ',' {
				i++
			}
		}
	}
}

// topMembers lists the members of the canonical object obj.
func topMembers(obj []byte) []member {
	ms := make([]member, 0, 16)
	for k, v := range objectMembers(obj) {
		ms = append(ms, member{key: k, val: v})
	}
	return ms
}

// arrayElems yields the elements of the canonical array arr.
func arrayElems(arr []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		i := 1
		for i < len(arr) && arr[i] != ']' {
			end := skipValue(arr, i)
			if !yield(arr[i:end]) {
				return
			}
			i = end
			if i < len(arr) && arr[i] == ',' {
				i++
			}
		}
	}
}

// lookup returns the value of key in the canonical object obj, or nil.
func lookup(obj []byte, key string) []byte {
	for k, v := range objectMembers(obj) {
		if string(k) == key {
			return v
		}
	}
	return nil
}

// decodeString decodes a canonical JSON string value; ok is false if v is
// not a string.
func decodeString(v []byte) (s string, ok bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	return decodeKey(v[1 : len(v)-1]), true
}

// decodeKey decodes the inside of a canonical JSON string (an object key as
// objectMembers yields it).
func decodeKey(inner []byte) string {
	if !slices.Contains(inner, '\\') {
		return string(inner)
	}
	out := make([]byte, 0, len(inner))
	for i := 0; i < len(inner); i++ {
		if inner[i] != '\\' {
			out = append(out, inner[i])
			continue
		}
		i++
		switch inner[i] {
		case 'b':
			out = append(out, '\b')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'f':
			out = append(out, '\f')
		case 'r':
			out = append(out, '\r')
		case 'u': // canonical JSON only uses \u00XX for control characters
			r, _ := hex4(inner, i+1)
			out = append(out, byte(r))
			i += 4
		default: // '"' or '\\'
			out = append(out, inner[i])
		}
	}
	return string(out)
}

// keyEquals reports whether a canonical object key (between the quotes)
// is name. Names this package looks for need no escaping, so comparing the
// encoded bytes is exact.
func keyEquals(key []byte, name string) bool { return string(key) == name }

// decodeInt parses a canonical JSON integer into an int64; ok is false if
// v is not an integer literal or does not fit.
func decodeInt(v []byte) (int64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// appendObjectWithout writes obj's members except those named in drop.
func appendObjectWithout(dst []byte, ms []member, drop ...string) []byte {
	dst = append(dst, '{')
	first := true
	for _, m := range ms {
		if isOneOf(m.key, drop) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, m.key...)
		dst = append(dst, '"', ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}')
}

func isOneOf(key []byte, names []string) bool {
	for _, n := range names {
		if string(key) == n {
			return true
		}
	}
	return false
}
