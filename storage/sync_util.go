package storage

// Small helpers of the sync queries (sync*.go, receipts.go, ...).

import (
	"fmt"
	"strings"
)

// syncMaxInList bounds the values of one IN (...) list: SQLite allows 32,766
// parameters and PostgreSQL 65,535, but long lists plan slowly.
const syncMaxInList = 500

// syncPlaceholders returns "$first, $first+1, ..." for n parameters.
func syncPlaceholders(first, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "$%d", first+i)
	}
	return sb.String()
}

// syncChunks yields s in pieces of at most n.
func syncChunks[T any](s []T, n int) func(yield func([]T) bool) {
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
