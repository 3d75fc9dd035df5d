package search

// BenchmarkSearch measures one search over a large index (1,000,000
// messages by default; MYELIN_SEARCH_BENCH_DOCS changes it), built once in
// MYELIN_SEARCH_BENCH_DIR when set (kept between runs) or a temporary
// directory. Run with:
//
//	go test -run XXX -bench Search -benchtime 200x ./syncapi/search/

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/myelin-chat/myelin/storage"
)

// The messages' words follow Zipf's law over a vocabulary of 20,000, as
// words of natural language do: word 0 is the most frequent. benchWord
// makes the vocabulary's words (letters only, so the analyzer keeps them
// whole; the stemmer may shorten a few).
const benchVocabulary = 20_000

func benchWord(i int) string {
	const letters = "bcdfghjklmnpqrstvwxz"
	w := []byte{'w'}
	for {
		w = append(w, letters[i%len(letters)], "aeiou"[i%5])
		if i /= len(letters); i == 0 {
			return string(w)
		}
	}
}

func benchIndex(b *testing.B) bleve.Index {
	docs := 1_000_000
	if s := os.Getenv("MYELIN_SEARCH_BENCH_DOCS"); s != "" {
		docs, _ = strconv.Atoi(s)
	}
	dir := os.Getenv("MYELIN_SEARCH_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("bench-%d-v%s.bleve", docs, schemaVersion))
	if idx, err := bleve.Open(path); err == nil {
		return idx
	}
	idx, err := bleve.New(path, indexMapping())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	zipf := rand.NewZipf(rng, 1.1, 1, benchVocabulary-1)
	start := time.Now()
	batch := idx.NewBatch()
	for i := 1; i <= docs; i++ {
		n := 3 + rng.IntN(12)
		body := make([]byte, 0, 96)
		for w := range n {
			if w > 0 {
				body = append(body, ' ')
			}
			body = append(body, benchWord(int(zipf.Uint64()))...)
		}
		_ = batch.Index("$ev"+strconv.Itoa(i), map[string]any{
			fieldBody: string(body), fieldRoom: fmt.Sprintf("!room%d:bench", rng.IntN(1000)),
			fieldSender: fmt.Sprintf("@user%d:bench", rng.IntN(5000)), fieldType: "m.room.message",
			fieldPos: posTerm(int64(i)), fieldSeq: float64(i), fieldURL: false,
		})
		if batch.Size() == 2000 {
			if err := idx.Batch(batch); err != nil {
				b.Fatal(err)
			}
			batch = idx.NewBatch()
		}
	}
	if err := idx.Batch(batch); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed %d messages in %v", docs, time.Since(start))
	return idx
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkSearch(b *testing.B) {
	idx := benchIndex(b)
	defer idx.Close()
	ix := &Index{idx: idx}
	// A user in 50 rooms, with a joined-only room they joined midway.
	var rooms []Room
	for r := range 50 {
		rooms = append(rooms, Room{RoomID: fmt.Sprintf("!room%d:bench", r*7), Visible: storage.AllPositions})
	}
	rooms[3].Visible = []storage.PosRange{{After: 400_000, Upto: 1<<63 - 1}}
	// The first search in the recent order reads the positions of the
	// index's documents (recent.go): timed apart from the searches.
	start, startCPU := time.Now(), cpuTime()
	if _, err := ix.Search(context.Background(), Query{Term: ParseTerm(benchWord(3000)), Rooms: rooms, Recent: true, Limit: 10}); err != nil {
		b.Fatal(err)
	}
	b.Logf("first search in the recent order (reads the positions): %v, %v of CPU", time.Since(start), cpuTime()-startCPU)
	for _, tc := range []struct {
		name   string
		term   string
		recent bool
	}{
		// Word 10 is in about 2% of messages, word 200 in 0.2%, word 3000
		// in 0.02% (Zipf, s = 1.1).
		{"rank-common-word", benchWord(10), false},
		{"recent-common-word", benchWord(10), true},
		{"rank-word", benchWord(200), false},
		{"recent-word", benchWord(200), true},
		{"rank-rare-word", benchWord(3000), false},
		{"rank-two-words", benchWord(10) + " " + benchWord(200), false},
		{"rank-phrase", `"` + benchWord(0) + " " + benchWord(1) + `"`, false},
		{"recent-phrase", `"` + benchWord(0) + " " + benchWord(1) + `"`, true},
		// Search as you type: the last word is also a prefix (of four
		// letters or more). "wbac" starts 50 of the vocabulary's words,
		// "wba", the most common word, 1,000.
		{"rank-prefix-3", "wba", false},
		{"recent-prefix-3", "wba", true},
		{"rank-prefix-4", "wbac", false},
		{"recent-prefix-4", "wbac", true},
		{"rank-word-and-prefix", benchWord(200) + " wbac", false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := Query{Term: ParseTerm(tc.term), Rooms: rooms, Recent: tc.recent, Limit: 10}
			// The CPU time per search as well: on a shared machine the
			// wall clock also counts other processes' turns.
			start := cpuTime()
			for b.Loop() {
				res, err := ix.Search(context.Background(), q)
				if err != nil || len(res.Hits) == 0 {
					b.Fatalf("%v, %v", res, err)
				}
			}
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
