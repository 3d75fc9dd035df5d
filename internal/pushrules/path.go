package pushrules

import "strings"

// Dot-separated property paths (appendices "Dot-separated property paths"):
// "content.m\.relates_to.rel_type" names rel_type in m.relates_to in
// content. A backslash escapes a dot or a backslash; any other backslash is
// literal. Paths are compared in a canonical form, the segments re-escaped
// with exactly those two escapes, so "content.a\b" and "content.a\\b" (both
// the segment `a\b`) name the same property.

// splitPath splits a dot-separated path into its property names.
func splitPath(path string) []string {
	var (
		segs []string
		cur  strings.Builder
	)
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\' && i+1 < len(path) && (path[i+1] == '.' || path[i+1] == '\\'):
			cur.WriteByte(path[i+1])
			i++
		case c == '.':
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(segs, cur.String())
}

// escapeSegment escapes one property name for a path.
func escapeSegment(s string) string {
	if !strings.ContainsAny(s, `.\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '.' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonicalPath is path with its escapes in canonical form.
func canonicalPath(path string) string {
	segs := splitPath(path)
	for i, s := range segs {
		segs[i] = escapeSegment(s)
	}
	return strings.Join(segs, ".")
}
