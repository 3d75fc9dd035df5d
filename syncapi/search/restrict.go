package search

// The searcher's rooms before the text. A word of a search term may be in
// most of the index while the searcher's rooms hold a few per cent of it;
// bleve reads a term's postings whole (its frequency and norm for the
// score, and for a phrase the positions of every word in every message
// holding them all) and only then asks the room filter about each document.
// For a word in most messages that was 740,000 documents scored to keep
// 37,000; for a phrase of the two most common words, 330,000 documents'
// positions checked to keep 16,000.
//
// So the text is searched through a reader that restricts the postings of
// a term much more common than the rooms' documents to the documents the
// searcher may see: it lists them once per search (only when some term is
// that common), as a bitmap of bleve's document numbers, and moves the
// term's postings from one of them to the next with Advance, so that the
// others are passed over undecoded (bleve's postings format, zap, still
// steps through every posting on the way, but only skips their bytes:
// over 1,000,000 messages that is most of what such a search now costs).
// The list is exact, and is then the room filter too. The rest of bleve
// (scoring, conjunctions, our phrase check) is unchanged and sees only
// those documents; a term's document count, which its score's idf is
// computed from, stays the whole index's, so ranks are the same as without
// the restriction. (Also measured: a conjunction led by the rooms, which
// bleve advances the text to. A searcher advanced to a room's document
// still reads, and a phrase checks, every message after it up to its next
// match, in any room: the phrase took 138 ms of CPU instead of 39, the most
// common word 60 instead of 25, and the room term would add to the scores.)

import (
	"context"
	"math"
	mathbits "math/bits"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// restrictRatio decides which terms are restricted: those in more than
// restrictRatio times as many documents as the searcher's rooms hold. A
// rarer term is cheaper to read whole than the list of the rooms'
// documents is to make (a variable so that the tests can turn the
// restriction off and compare).
var restrictRatio = 2.0

// visibleText matches the documents of text in rooms, at the positions
// visible in each, that match conditions too (when not nil).
type visibleText struct {
	text       query.Query
	rooms      []Room
	conditions query.Query
}

// unscored are the options of the filters' searchers: they only say which
// documents match.
var unscored = search.SearcherOptions{Score: "none"}

func (q *visibleText) Searcher(ctx context.Context, i index.IndexReader, m mapping.IndexMapping,
	options search.SearcherOptions) (search.Searcher, error) {
	r, err := newRestrictingReader(ctx, i, m, q.rooms)
	if err != nil {
		return nil, err
	}
	text, err := q.text.Searcher(ctx, r, m, options)
	r.closeRooms()
	if err != nil {
		return nil, err
	}
	var accept []searcher.FilterFunc
	var filters []query.Query
	if docs := r.docs; docs != nil {
		// The visible documents are listed already.
		accept = append(accept, func(_ *search.SearchContext, d *search.DocumentMatch) bool {
			return docs.has(d.IndexInternalID.Value())
		})
	} else {
		filters = append(filters, roomsQuery(q.rooms))
	}
	if q.conditions != nil {
		filters = append(filters, q.conditions)
	}
	fs := &filteredSearcher{}
	for _, f := range filters {
		s, err := f.Searcher(ctx, i, m, unscored)
		if err != nil {
			text.Close()
			fs.closeFilters()
			return nil, err
		}
		fs.filters = append(fs.filters, s)
		accept = append(accept, follow(s))
	}
	fs.FilteringSearcher = searcher.NewFilteringSearcher(ctx, text, func(sctx *search.SearchContext, d *search.DocumentMatch) bool {
		for _, f := range accept {
			if !f(sctx, d) {
				return false
			}
		}
		return true
	})
	return fs, nil
}

// follow is a filter that tells whether a document matches fs, asked of
// the text's hits in the order of their IDs: fs advances to each.
func follow(fs search.Searcher) searcher.FilterFunc {
	var (
		started bool
		at      *search.DocumentMatch // where fs is, nil when it is done
	)
	return func(sctx *search.SearchContext, d *search.DocumentMatch) bool {
		var err error
		if !started {
			started = true
			if at, err = fs.Next(sctx); err != nil {
				at = nil
			}
		}
		if at == nil {
			return false
		}
		if at.IndexInternalID.Compare(d.IndexInternalID) < 0 {
			sctx.DocumentMatchPool.Put(at)
			if at, err = fs.Advance(sctx, d.IndexInternalID); err != nil || at == nil {
				at = nil
				return false
			}
		}
		return at.IndexInternalID.Equals(d.IndexInternalID)
	}
}

// filteredSearcher is a FilteringSearcher that closes its filters'
// searchers too.
type filteredSearcher struct {
	*searcher.FilteringSearcher
	filters []search.Searcher
}

func (s *filteredSearcher) Close() error {
	err := s.FilteringSearcher.Close()
	if ferr := s.closeFilters(); err == nil {
		err = ferr
	}
	return err
}

func (s *filteredSearcher) closeFilters() (err error) {
	for _, f := range s.filters {
		if ferr := f.Close(); err == nil {
			err = ferr
		}
	}
	return err
}

// restrictingReader is the index seen by the text: a text term in more
// than above documents has its postings restricted to the visible
// documents of rooms, listed the first time one is.
type restrictingReader struct {
	index.IndexReader
	ctx     context.Context
	mapping mapping.IndexMapping
	rooms   []Room
	terms   []index.TermFieldReader // of each room, for its documents
	above   uint64
	docs    docSet // the visible documents, once listed
}

func newRestrictingReader(ctx context.Context, i index.IndexReader, m mapping.IndexMapping,
	rooms []Room) (*restrictingReader, error) {
	r := &restrictingReader{IndexReader: i, ctx: ctx, mapping: m}
	var most uint64 // the rooms' documents: at least as many as are visible
	for _, room := range rooms {
		if len(room.Visible) == 0 {
			continue
		}
		tfr, err := i.TermFieldReader(ctx, []byte(room.RoomID), fieldRoom, false, false, false)
		if err != nil {
			r.closeRooms()
			return nil, err
		}
		r.rooms = append(r.rooms, room)
		r.terms = append(r.terms, tfr)
		most += tfr.Count()
	}
	r.above = uint64(restrictRatio * float64(most))
	return r, nil
}

func (r *restrictingReader) closeRooms() {
	for _, tfr := range r.terms {
		tfr.Close()
	}
	r.terms = nil
}

func (r *restrictingReader) TermFieldReader(ctx context.Context, term []byte, field string,
	includeFreq, includeNorm, includeTermVectors bool) (index.TermFieldReader, error) {
	tfr, err := r.IndexReader.TermFieldReader(ctx, term, field, includeFreq, includeNorm, includeTermVectors)
	if err != nil || tfr.Count() <= r.above || r.terms == nil {
		return tfr, err
	}
	switch field {
	case fieldBody, fieldName, fieldTopic:
	default:
		return tfr, nil
	}
	if r.docs == nil {
		docs, numbered, err := r.list()
		if err != nil {
			tfr.Close()
			return nil, err
		}
		if !numbered {
			r.above = math.MaxUint64 // no term is restricted
			return tfr, nil
		}
		r.docs = docs
	}
	probe, err := r.IndexReader.TermFieldReader(ctx, term, field, false, false, false)
	if err != nil {
		tfr.Close()
		return nil, err
	}
	return &restrictedTerm{TermFieldReader: tfr, probe: probe, docs: r.docs}, nil
}

// list returns the visible documents of the rooms. numbered is false when
// the index's internal IDs are not the 8-byte document numbers of scorch,
// bleve's index on disk (bleve's in-memory index uses the event IDs).
func (r *restrictingReader) list() (docs docSet, numbered bool, err error) {
	n, _ := r.DocCount()
	docs = make(docSet, 0, n/64+1) // deleted documents may take numbers beyond
	// Only the documents' IDs are read: d needs no reset between them.
	var d index.TermFieldDoc
	for k, room := range r.rooms {
		if err := r.ctx.Err(); err != nil {
			return nil, false, err
		}
		if !wholeRoom(room) {
			if numbered, err := r.listVisible(room, &docs); !numbered || err != nil {
				return nil, false, err
			}
			continue
		}
		for {
			next, err := r.terms[k].Next(&d)
			if err != nil {
				return nil, false, err
			}
			if next == nil {
				break
			}
			if len(next.ID) != 8 {
				return nil, false, nil
			}
			docs.add(next.ID.Value())
		}
	}
	return docs, true, nil
}

// listVisible adds to docs the documents of room at the positions visible
// in it.
func (r *restrictingReader) listVisible(room Room, docs *docSet) (numbered bool, err error) {
	s, err := roomQuery(room).Searcher(r.ctx, r.IndexReader, r.mapping, unscored)
	if err != nil {
		return false, err
	}
	defer s.Close()
	sctx := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(s.DocumentMatchPoolSize(), 0)}
	for {
		d, err := s.Next(sctx)
		if err != nil || d == nil {
			return err == nil, err
		}
		if len(d.IndexInternalID) != 8 {
			return false, nil
		}
		docs.add(d.IndexInternalID.Value())
		sctx.DocumentMatchPool.Put(d)
	}
}

// restrictedTerm is the postings of a term restricted to docs. It finds
// the next of its documents in docs with probe, which reads only document
// numbers and so jumps ahead cheaply, and only then moves the postings the
// search reads (with their frequencies and positions) there: they are
// decoded only for the documents returned.
type restrictedTerm struct {
	index.TermFieldReader
	probe  index.TermFieldReader
	docs   docSet
	next   uint64 // the documents before it are passed
	id     index.IndexInternalID
	probed index.TermFieldDoc
}

func (t *restrictedTerm) Next(pre *index.TermFieldDoc) (*index.TermFieldDoc, error) {
	return t.seek(t.next, pre)
}

func (t *restrictedTerm) Advance(id index.IndexInternalID, pre *index.TermFieldDoc) (*index.TermFieldDoc, error) {
	// Backwards too (the term's readers then start over).
	return t.seek(id.Value(), pre)
}

// seek returns the first posting of the term at or after doc that is in
// docs.
func (t *restrictedTerm) seek(doc uint64, pre *index.TermFieldDoc) (*index.TermFieldDoc, error) {
	t.next = math.MaxUint64 // unless one is found
	for {
		var ok bool
		if doc, ok = t.docs.atOrAfter(doc); !ok {
			return nil, nil
		}
		t.id = index.NewIndexInternalID(t.id, doc)
		p, err := t.probe.Advance(t.id, t.probed.Reset())
		if err != nil || p == nil {
			return nil, err
		}
		if doc = p.ID.Value(); t.docs.has(doc) {
			d, err := t.TermFieldReader.Advance(p.ID, pre)
			if err == nil && d != nil {
				t.next = d.ID.Value() + 1
			}
			return d, err
		}
	}
}

func (t *restrictedTerm) Close() error {
	err := t.TermFieldReader.Close()
	if perr := t.probe.Close(); err == nil {
		err = perr
	}
	return err
}

// docSet is a set of internal document numbers: bit n%64 of word n/64.
type docSet []uint64

func (s *docSet) add(n uint64) {
	w := n / 64
	if w >= uint64(len(*s)) {
		*s = append(*s, make([]uint64, w+1-uint64(len(*s)))...)
	}
	(*s)[w] |= 1 << (n % 64)
}

func (s docSet) has(n uint64) bool {
	w := n / 64
	return w < uint64(len(s)) && s[w]&(1<<(n%64)) != 0
}

// atOrAfter returns the first member at or after n.
func (s docSet) atOrAfter(n uint64) (uint64, bool) {
	w := n / 64
	if w >= uint64(len(s)) {
		return n, false
	}
	bits := s[w] >> (n % 64) << (n % 64)
	for bits == 0 {
		if w++; w == uint64(len(s)) {
			return n, false
		}
		bits = s[w]
	}
	return w*64 + uint64(mathbits.TrailingZeros64(bits)), true
}
