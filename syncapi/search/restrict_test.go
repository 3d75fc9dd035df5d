package search

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"

	"github.com/myelin-chat/myelin/storage"
)

// restrictIndex is an index of random messages over a few words, some in
// most messages, in 20 rooms: a searcher in 5 of them sees far fewer
// documents than the common words are in, so those words are restricted.
type restrictIndex struct {
	ix   *Index
	docs map[string]restrictDoc
}

type restrictDoc struct {
	room, sender string
	pos          int64
	tokens       analysis.TokenStream
}

// newRestrictIndex makes it on disk (scorch, as Open does), or in memory
// (bleve's other index, where nothing is restricted).
func newRestrictIndex(t *testing.T, onDisk bool) *restrictIndex {
	t.Helper()
	var idx bleve.Index
	var err error
	if onDisk {
		idx, err = bleve.New(filepath.Join(t.TempDir(), "search.bleve"), indexMapping())
	} else {
		idx, err = bleve.NewMemOnly(indexMapping())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	ri := &restrictIndex{ix: &Index{idx: idx}, docs: map[string]restrictDoc{}}
	// apple is in almost every message, banana in most, then fewer.
	words := []string{"apple", "apple", "apple", "banana", "banana", "cherry", "the", "delta", "echo", "foxtrot"}
	rng := rand.New(rand.NewPCG(7, 7))
	b := idx.NewBatch()
	for pos := int64(1); pos <= 3000; pos++ {
		var body []string
		for range 2 + rng.IntN(9) {
			body = append(body, words[rng.IntN(len(words))])
		}
		if rng.IntN(20) == 0 {
			body = append(body, fmt.Sprint("cherry", rng.IntN(3))) // for prefixes
		}
		id := fmt.Sprint("$", pos)
		d := restrictDoc{room: fmt.Sprintf("!r%d:x", rng.IntN(20)), sender: fmt.Sprintf("@u%d:x", rng.IntN(4)), pos: pos,
			tokens: ri.ix.analyze(strings.Join(body, " "))}
		ri.docs[id] = d
		if err := b.Index(id, map[string]any{fieldBody: strings.Join(body, " "), fieldRoom: d.room, fieldSender: d.sender,
			fieldType: "m.room.message", fieldPos: posTerm(pos), fieldSeq: float64(pos), fieldURL: false}); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	return ri
}

// searcherRooms are the rooms of the searcher: two wholly visible, one from
// position 1,000, one in two ranges, one with nothing visible.
var searcherRooms = []Room{
	{RoomID: "!r0:x", Visible: storage.AllPositions},
	{RoomID: "!r1:x", Visible: storage.AllPositions},
	{RoomID: "!r2:x", Visible: []storage.PosRange{{After: 1000, Upto: math.MaxInt64}}},
	{RoomID: "!r3:x", Visible: []storage.PosRange{{After: 200, Upto: 700}, {After: 2000, Upto: 2500}}},
	{RoomID: "!r4:x"},
}

// visible reports whether the searcher may see d.
func visible(d restrictDoc) bool {
	for _, r := range searcherRooms {
		if r.RoomID != d.room {
			continue
		}
		for _, pr := range r.Visible {
			if d.pos > pr.After && d.pos <= pr.Upto {
				return true
			}
		}
	}
	return false
}

// hasPhrase reports whether tokens hold the phrase's tokens at the same
// distances from each other.
func hasPhrase(tokens, phrase analysis.TokenStream) bool {
	at := map[string]bool{}
	for _, t := range tokens {
		at[fmt.Sprint(string(t.Term), "@", t.Position)] = true
	}
	for _, start := range tokens {
		found := true
		for _, p := range phrase {
			found = found && at[fmt.Sprint(string(p.Term), "@", start.Position+p.Position-phrase[0].Position)]
		}
		if found {
			return true
		}
	}
	return false
}

// TestRestrictionKeepsResults: a search whose words are restricted to the
// searcher's documents before they are read finds what the search without
// the restriction finds, in the same order, with the same ranks and count;
// and what it finds is what the searcher may see and the term asks for.
func TestRestrictionKeepsResults(t *testing.T) {
	terms := []string{"apple", "banana", `"apple banana"`, `"banana apple"`, `"apple the banana"`,
		"apple banana", `"apple apple"`, "apple OR delta", "apple -banana", `apple -"banana apple"`, "cher",
		`"apple banana" cherry`, "foxtrot"}
	t.Run("on disk", func(t *testing.T) { testRestrictionKeepsResults(t, newRestrictIndex(t, true), terms) })
	// In memory the index's IDs are not numbers: nothing is restricted.
	t.Run("in memory", func(t *testing.T) { testRestrictionKeepsResults(t, newRestrictIndex(t, false), terms[:3]) })
}

func testRestrictionKeepsResults(t *testing.T, ri *restrictIndex, terms []string) {
	var inRooms, withApple int
	for _, d := range ri.docs {
		if slices.ContainsFunc(searcherRooms, func(r Room) bool { return r.RoomID == d.room }) {
			inRooms++
		}
		if slices.ContainsFunc(d.tokens, func(t *analysis.Token) bool { return string(t.Term) == "appl" }) {
			withApple++
		}
	}
	if float64(withApple) <= restrictRatio*float64(inRooms) {
		t.Fatalf("apple is in %d messages, the rooms hold %d: too few to be restricted", withApple, inRooms)
	}
	ctx := context.Background()
	for _, term := range terms {
		for _, recent := range []bool{false, true} {
			for _, senders := range [][]string{nil, {"@u1:x", "@u2:x"}} {
				q := Query{Term: ParseTerm(term), Rooms: searcherRooms, Recent: recent, Limit: 5000, Senders: senders}
				restricted, err := ri.ix.Search(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				saved := restrictRatio
				restrictRatio = math.Inf(1)
				whole, err := ri.ix.Search(ctx, q)
				restrictRatio = saved
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%s (recent %v, senders %v)", term, recent, senders)
				if restricted.Total != whole.Total || !slices.Equal(restricted.Hits, whole.Hits) {
					t.Fatalf("%s: restricted %d hits %v, unrestricted %d %v", name, restricted.Total, restricted.Hits,
						whole.Total, whole.Hits)
				}
				if len(restricted.Hits) == 0 {
					t.Fatalf("%s: nothing found", name)
				}
				if uint64(len(restricted.Hits)) != restricted.Total {
					t.Fatalf("%s: %d hits, total %d", name, len(restricted.Hits), restricted.Total)
				}
				for _, h := range restricted.Hits {
					d := ri.docs[h.EventID]
					if !visible(d) || (senders != nil && !slices.Contains(senders, d.sender)) {
						t.Fatalf("%s: found %s, in %s at %d from %s, which the searcher may not see", name, h.EventID, d.room, d.pos, d.sender)
					}
				}
				if p := q.Term; len(p.Must) == 1 && len(p.Must[0]) == 1 && p.Must[0][0].Phrase && len(p.MustNot) == 0 {
					phrase := ri.ix.analyze(p.Must[0][0].Text)
					want := 0
					for _, d := range ri.docs {
						if visible(d) && (senders == nil || slices.Contains(senders, d.sender)) && hasPhrase(d.tokens, phrase) {
							want++
						}
					}
					if want != len(restricted.Hits) {
						t.Fatalf("%s: found %d, %d messages visible hold the phrase", name, len(restricted.Hits), want)
					}
				}
			}
		}
	}
}

// TestPhraseAsBleve: the phrase query finds what bleve's finds, with the
// same scores.
func TestPhraseAsBleve(t *testing.T) {
	ri := newRestrictIndex(t, true)
	for _, text := range []string{"apple banana", "banana apple", "apple the banana", "apple apple", "cherry delta echo", "apple"} {
		ours := bleve.NewSearchRequestOptions(newPhraseQuery(ri.ix.analyze(text), fieldBody), 5000, 0, false)
		mp := bleve.NewMatchPhraseQuery(text)
		mp.SetField(fieldBody)
		mp.Analyzer = en.AnalyzerName
		theirs := bleve.NewSearchRequestOptions(mp, 5000, 0, false)
		a, err := ri.ix.idx.Search(ours)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ri.ix.idx.Search(theirs)
		if err != nil {
			t.Fatal(err)
		}
		if a.Total != b.Total || len(a.Hits) != len(b.Hits) || a.Total == 0 {
			t.Fatalf("%q: %d found, bleve's phrase %d", text, a.Total, b.Total)
		}
		for i := range a.Hits {
			if a.Hits[i].ID != b.Hits[i].ID || math.Abs(a.Hits[i].Score-b.Hits[i].Score) > 1e-9 {
				t.Fatalf("%q: hit %d is %s (%v), bleve's %s (%v)", text, i, a.Hits[i].ID, a.Hits[i].Score, b.Hits[i].ID, b.Hits[i].Score)
			}
		}
	}
}
