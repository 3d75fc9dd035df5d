package search

// The recent order (order_by=recent) without bleve's sort. Sorting by a
// field reads the field's doc values for every hit, and with more than a
// few thousand hits that decompresses the whole column in each search
// (about 12 ms over 1,000,000 messages): the recent order cost up to 20 ms
// more than rank. Instead the positions of each segment of the index are
// read once into an array by document number, kept for as long as the
// segment lives (a segment never changes; a merge makes a new one), and a
// search looks each hit's position up there and keeps the newest: it
// costs what rank does. Reading them takes about 140 ms of CPU per
// 1,000,000 events; the indexer reads new segments' after each batch, so
// that a search seldom has to (only after a merge the indexer has not
// seen yet). Document numbers do not follow positions (bleve numbers a
// batch's documents in the order their analysis ends, and a merge
// concatenates segments in any order), so every hit is still looked up.
//
// The arrays take 8 bytes per indexed event, a few per cent of the index
// on disk. An index that is not scorch's (bleve's in-memory one, which
// numbers nothing) is sorted by bleve.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/collector"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// recentFromCache: the recent order reads the positions of hits from the
// cache (a variable so that the tests can compare with bleve's sort).
var recentFromCache = true

// positionCache holds the positions of the documents of each segment of
// the index, by segment ID.
type positionCache struct {
	mu       sync.Mutex
	segments map[uint64]*segmentPositions
}

// segmentPositions is the position of each document of one segment, by
// its number in the segment; read once.
type segmentPositions struct {
	once sync.Once
	pos  []int64
	err  error
}

// snapshotPositions is the position of each document of an index
// snapshot: segment k holds the documents from offsets[k] on.
type snapshotPositions struct {
	offsets []uint64
	pos     [][]int64
}

// at returns the position of the document numbered doc in the snapshot.
func (s *snapshotPositions) at(doc uint64) int64 {
	k := sort.Search(len(s.offsets), func(k int) bool { return s.offsets[k] > doc }) - 1
	if k < 0 || doc-s.offsets[k] >= uint64(len(s.pos[k])) {
		return 0 // not reached: every document is in a segment
	}
	return s.pos[k][doc-s.offsets[k]]
}

// of returns the positions of the documents of snap, reading those of the
// segments not met before, and forgets the segments snap no longer holds.
// ok is false when a segment's doc values cannot be read.
func (c *positionCache) of(snap *scorch.IndexSnapshot) (_ *snapshotPositions, ok bool, _ error) {
	segs := snap.Segments()
	entries := make([]*segmentPositions, len(segs))
	c.mu.Lock()
	if c.segments == nil {
		c.segments = map[uint64]*segmentPositions{}
	}
	live := make(map[uint64]bool, len(segs))
	for k, s := range segs {
		live[s.Id()] = true
		e := c.segments[s.Id()]
		if e == nil {
			e = &segmentPositions{}
			c.segments[s.Id()] = e
		}
		entries[k] = e
	}
	for id := range c.segments {
		if !live[id] {
			delete(c.segments, id)
		}
	}
	c.mu.Unlock()

	out := &snapshotPositions{offsets: make([]uint64, len(segs)), pos: make([][]int64, len(segs))}
	var offset uint64
	for k, s := range segs {
		seg := s.Segment()
		e := entries[k]
		e.once.Do(func() { e.pos, e.err = readSegmentPositions(seg) })
		if e.err != nil {
			c.forget(s.Id(), e) // read again by the next search
			return nil, false, e.err
		}
		if e.pos == nil {
			return nil, false, nil
		}
		out.offsets[k] = offset
		out.pos[k] = e.pos
		offset += seg.Count() // as scorch numbers them: deleted documents too
	}
	return out, true, nil
}

// forget drops the positions of segment id if they are e.
func (c *positionCache) forget(id uint64, e *segmentPositions) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.segments[id] == e {
		delete(c.segments, id)
	}
}

// readPositions reads the positions of the segments of the index not read
// yet (the indexer calls it after each batch, so that searches seldom
// have to).
func (ix *Index) readPositions() {
	advanced, err := ix.idx.Advanced()
	if err != nil {
		return
	}
	r, err := advanced.Reader()
	if err != nil {
		return
	}
	defer r.Close()
	if snap, ok := r.(*scorch.IndexSnapshot); ok {
		if _, _, err := ix.positions.of(snap); err != nil {
			ix.logger.Warn("cannot read the positions of the index's documents", "err", err)
		}
	}
}

// readSegmentPositions reads the position of every document of seg from
// its doc values; nil when seg has none.
func readSegmentPositions(seg segment.Segment) ([]int64, error) {
	dv, ok := seg.(segment.DocValueVisitable)
	if !ok {
		return nil, nil
	}
	n := seg.Count()
	pos := make([]int64, n)
	fields := []string{fieldPos}
	var (
		state segment.DocVisitState
		err   error
		p     int64
	)
	visit := func(_ string, term []byte) { p, _ = parsePosTerm(term) }
	for d := range n {
		p = 0 // a deleted document may have none
		if state, err = dv.VisitDocValues(d, fields, visit, state); err != nil {
			return nil, fmt.Errorf("search: read positions: %w", err)
		}
		pos[d] = p
	}
	return pos, nil
}

// recentHit is a hit of the recent order before its event ID is read.
type recentHit struct {
	doc   uint64
	pos   int64
	score float64
}

// searchRecent runs qry and returns its newest limit+1 hits before
// q.After (with the count of every hit), or ok false when the index is not
// one whose positions can be cached.
func (ix *Index) searchRecent(ctx context.Context, qry query.Query, q Query) (_ *Result, ok bool, err error) {
	advanced, err := ix.idx.Advanced()
	if err != nil {
		return nil, false, fmt.Errorf("search: %w", err)
	}
	r, err := advanced.Reader()
	if err != nil {
		return nil, false, fmt.Errorf("search: %w", err)
	}
	defer func() {
		if cerr := r.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("search: %w", cerr)
		}
	}()
	snap, isScorch := r.(*scorch.IndexSnapshot)
	if !isScorch {
		return nil, false, nil
	}
	positions, ok, err := ix.positions.of(snap)
	if err != nil || !ok {
		return nil, false, err
	}
	// What bleve's SearchInContext tells the term searchers: score with
	// tf-idf, as it does for our mapping.
	ctx = context.WithValue(ctx, search.GetScoringModelCallbackKey,
		search.GetScoringModelCallbackFn(func() string { return index.DefaultScoringModel }))
	s, err := qry.Searcher(ctx, r, ix.idx.Mapping(), search.SearcherOptions{})
	if err != nil {
		return nil, false, fmt.Errorf("search: %w", err)
	}
	defer s.Close()
	sctx := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(s.DocumentMatchPoolSize(), 0)}

	keep := q.Limit + 1
	top := make([]recentHit, 0, keep) // newest first
	var total uint64
	for {
		if total%collector.CheckDoneEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
		}
		d, err := s.Next(sctx)
		if err != nil {
			return nil, false, fmt.Errorf("search: %w", err)
		}
		if d == nil {
			break
		}
		total++
		h := recentHit{doc: d.IndexInternalID.Value(), pos: positions.at(d.IndexInternalID.Value()), score: d.Score}
		sctx.DocumentMatchPool.Put(d)
		if q.After != nil && h.pos >= q.After.Pos {
			continue
		}
		if len(top) == keep && h.pos <= top[keep-1].pos {
			continue
		}
		at, _ := slices.BinarySearchFunc(top, h.pos, func(t recentHit, pos int64) int { return cmpDesc(t.pos, pos) })
		if len(top) == keep {
			top = top[:keep-1]
		}
		top = slices.Insert(top, at, h)
	}
	out := &Result{Total: total}
	var id index.IndexInternalID
	for _, h := range top {
		if len(out.Hits) == q.Limit {
			out.More = true
			break
		}
		id = index.NewIndexInternalID(id, h.doc)
		eventID, err := r.ExternalID(id)
		if err != nil {
			return nil, false, fmt.Errorf("search: %w", err)
		}
		out.Hits = append(out.Hits, Hit{EventID: eventID, Score: h.score})
	}
	return out, true, nil
}

// cmpDesc orders positions newest first.
func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
