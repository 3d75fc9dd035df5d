package storage

// IN (...) lists: queries over a set of values pass them as parameters, a
// bounded number at a time.

import (
	"strconv"
	"strings"
)

// inChunk bounds the values of one IN (...) list: SQLite allows 32,766
// parameters and PostgreSQL 65,535, but long lists plan slowly.
const inChunk = 500

// inList returns "$first, $first+1, ..." for n values.
func inList(first, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('$')
		sb.WriteString(strconv.Itoa(first + i))
	}
	return sb.String()
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}
