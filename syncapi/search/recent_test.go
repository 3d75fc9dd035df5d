package search

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blevesearch/bleve/v2"

	"github.com/myelin-chat/myelin/storage"
)

// TestPosTermOrder: the order of position terms is the order of
// positions, negative ones included, and they read back.
func TestPosTermOrder(t *testing.T) {
	positions := []int64{-1 << 63, -1 << 40, -1000, -2, -1, 0, 1, 2, 999, 1000, 1 << 40, 1<<63 - 1}
	for i, p := range positions {
		got, ok := parsePosTerm([]byte(posTerm(p)))
		if !ok || got != p {
			t.Fatalf("posTerm(%d) = %q reads back as %d, %v", p, posTerm(p), got, ok)
		}
		if i > 0 && posTerm(positions[i-1]) >= posTerm(p) {
			t.Fatalf("posTerm(%d) = %q does not sort before posTerm(%d) = %q", positions[i-1], posTerm(positions[i-1]), p, posTerm(p))
		}
	}
}

// TestRecentFromCache: the recent order read from the cached positions
// finds what bleve's sort by position finds, page by page, with the same
// ranks and counts, over an index of several segments whose document
// numbers do not follow positions, with backfilled (negative) positions,
// and after documents were replaced and deleted.
func TestRecentFromCache(t *testing.T) {
	idx, err := bleve.New(filepath.Join(t.TempDir(), "search.bleve"), indexMapping())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	ix := &Index{idx: idx}
	words := []string{"apple", "apple", "banana", "cherry", "delta"}
	rng := rand.New(rand.NewPCG(3, 3))
	positions := rng.Perm(2400)
	add := func(b *bleve.Batch, pos int64) {
		t.Helper()
		body := words[rng.IntN(len(words))] + " " + words[rng.IntN(len(words))]
		if err := b.Index(fmt.Sprint("$", pos), map[string]any{fieldBody: body,
			fieldRoom: fmt.Sprintf("!r%d:x", rng.IntN(3)), fieldSender: "@u:x", fieldType: "m.room.message",
			fieldPos: posTerm(pos), fieldSeq: float64(pos), fieldURL: false}); err != nil {
			t.Fatal(err)
		}
	}
	// Batches of positions in random order, below zero for a quarter.
	for len(positions) > 0 {
		b := idx.NewBatch()
		n := min(len(positions), 100+rng.IntN(300))
		for _, p := range positions[:n] {
			add(b, int64(p)-600)
		}
		if err := idx.Batch(b); err != nil {
			t.Fatal(err)
		}
		positions = positions[n:]
	}
	ctx := context.Background()
	rooms := []Room{{RoomID: "!r0:x", Visible: storage.AllPositions},
		{RoomID: "!r1:x", Visible: []storage.PosRange{{After: -300, Upto: 50}, {After: 900, Upto: 1<<63 - 1}}}}
	compare := func(stage string) {
		t.Helper()
		for _, term := range []string{"apple", "banana", `"apple banana"`, "apple -cherry", "delta"} {
			for _, limit := range []int{1, 40, 200} {
				q := Query{Term: ParseTerm(term), Rooms: rooms, Recent: true, Limit: limit}
				for page := 0; ; page++ {
					if _, fromCache, err := ix.searchRecent(ctx, bleve.NewMatchAllQuery(), q); !fromCache || err != nil {
						t.Fatalf("the recent order is not read from the cache: %v", err)
					}
					cached, err := ix.Search(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					recentFromCache = false
					sorted, err := ix.Search(ctx, q)
					recentFromCache = true
					if err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("%s: %s, limit %d, page %d", stage, term, limit, page)
					if cached.Total != sorted.Total || cached.More != sorted.More || !slices.Equal(cached.Hits, sorted.Hits) {
						t.Fatalf("%s: from the cache %d %v %v, sorted by bleve %d %v %v", name,
							cached.Total, cached.More, cached.Hits, sorted.Total, sorted.More, sorted.Hits)
					}
					if len(cached.Hits) == 0 && page == 0 {
						t.Fatalf("%s: nothing found", name)
					}
					if !cached.More || page == 20 {
						break
					}
					var last int64
					if _, err := fmt.Sscan(cached.Hits[len(cached.Hits)-1].EventID[1:], &last); err != nil {
						t.Fatal(err)
					}
					q.After = &Cursor{Pos: last}
				}
			}
		}
	}
	compare("batches")
	// Replaced (their old documents are deleted, the new ones get new
	// numbers and positions) and deleted documents.
	b := idx.NewBatch()
	for p := int64(-600); p < 1800; p += 7 {
		add(b, p)
	}
	for p := int64(-599); p < 1800; p += 11 {
		b.Delete(fmt.Sprint("$", p))
	}
	if err := idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	compare("after updates")
}
