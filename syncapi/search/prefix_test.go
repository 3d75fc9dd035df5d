package search

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/blevesearch/bleve/v2"

	"github.com/myelin-chat/myelin/storage"
)

// TestPrefixExpansionKeepsFrequentWords: a prefix that starts more words
// than maxPrefixTerms matches the most frequent of them (and the word
// itself), not the rare ones; a visibility range keeps only its positions.
func TestPrefixExpansionKeepsFrequentWords(t *testing.T) {
	idx, err := bleve.NewMemOnly(indexMapping())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ix := &Index{idx: idx}
	// Word i ("pxqz" + i) is in i+1 messages; "pxqz" itself in one.
	const words = maxPrefixTerms + 8
	pos := int64(0)
	docOf := map[string]int{} // event ID → word
	add := func(body string, word int) {
		pos++
		id := fmt.Sprint("$", pos)
		docOf[id] = word
		if err := idx.Index(id, map[string]any{fieldBody: body, fieldRoom: "!r:x", fieldType: "m.room.message",
			fieldPos: posTerm(pos), fieldSeq: float64(pos)}); err != nil {
			t.Fatal(err)
		}
	}
	add("pxqz", -1)
	for i := range words {
		for range i + 1 {
			add(fmt.Sprintf("pxqz%02d", i), i)
		}
	}
	search := func(visible []storage.PosRange) []int {
		t.Helper()
		res, err := ix.Search(context.Background(), Query{Term: ParseTerm("pxqz"),
			Rooms: []Room{{RoomID: "!r:x", Visible: visible}}, Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		var found []int
		for _, h := range res.Hits {
			if w := docOf[h.EventID]; !slices.Contains(found, w) {
				found = append(found, w)
			}
		}
		slices.Sort(found)
		return found
	}
	want := []int{-1}
	for i := words - maxPrefixTerms; i < words; i++ {
		want = append(want, i)
	}
	if got := search(storage.AllPositions); !slices.Equal(got, want) {
		t.Fatalf("words found: %v, want the word and the %d most frequent longer ones %v", got, maxPrefixTerms, want)
	}
	// Positions 2..4 hold word 0 (once) and word 1 (twice), both too rare
	// to be expanded to.
	if got := search([]storage.PosRange{{After: 1, Upto: 4}}); len(got) != 0 {
		t.Fatalf("in positions 2..4: %v, want none", got)
	}
	last := pos
	if got := search([]storage.PosRange{{After: last - 1, Upto: last}}); !slices.Equal(got, []int{words - 1}) {
		t.Fatalf("at the last position: %v, want [%d]", got, words-1)
	}
	if got := search([]storage.PosRange{{After: -1 << 63, Upto: 1}}); !slices.Equal(got, []int{-1}) {
		t.Fatalf("up to position 1: %v, want [-1]", got)
	}
}
