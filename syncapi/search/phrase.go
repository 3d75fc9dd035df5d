package search

// A phrase query of our own: bleve's phrase searcher (MatchPhraseQuery)
// turns the word positions of every document holding all the words into
// maps before it checks them (DocumentMatch.Complete): for a phrase of
// common words, thousands of documents and most of the search's memory
// (10 MB, over 1,000,000 messages) and time. This one checks the positions
// where the term searchers leave them, in a slice. It scores a document
// as bleve's does: the conjunction of its words' term searchers.

import (
	"context"
	"math"
	"slices"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// phraseQuery matches the documents whose field holds words[0],
// words[1]... at consecutive positions; an empty words[k] (a word the
// analyzer dropped, such as "the") matches any word; several are
// alternatives.
type phraseQuery struct {
	words [][]string
	field string
}

// newPhraseQuery is the phrase of an analyzed text in field, with gaps
// where the analyzer dropped words (as bleve's MatchPhraseQuery makes
// it). tokens is not empty.
func newPhraseQuery(tokens analysis.TokenStream, field string) *phraseQuery {
	first, last := tokens[0].Position, tokens[0].Position
	for _, t := range tokens {
		first, last = min(first, t.Position), max(last, t.Position)
	}
	words := make([][]string, last-first+1)
	for _, t := range tokens {
		words[t.Position-first] = append(words[t.Position-first], string(t.Term))
	}
	return &phraseQuery{words: words, field: field}
}

func (q *phraseQuery) Searcher(ctx context.Context, i index.IndexReader, _ mapping.IndexMapping,
	options search.SearcherOptions) (search.Searcher, error) {
	options.IncludeTermVectors = true
	var words []search.Searcher
	closeAll := func() {
		for _, s := range words {
			s.Close()
		}
	}
	for _, alts := range q.words {
		var ss []search.Searcher
		for _, w := range alts {
			s, err := searcher.NewTermSearcher(ctx, i, w, q.field, 1.0, options)
			if err != nil {
				for _, s := range ss {
					s.Close()
				}
				closeAll()
				return nil, err
			}
			ss = append(ss, s)
		}
		switch len(ss) {
		case 0:
			continue
		case 1:
			words = append(words, ss[0])
			continue
		}
		d, err := searcher.NewDisjunctionSearcher(ctx, i, ss, 1, options)
		if err != nil {
			closeAll()
			return nil, err
		}
		words = append(words, d)
	}
	must, err := searcher.NewConjunctionSearcher(ctx, i, words, options)
	if err != nil {
		closeAll()
		return nil, err
	}
	// As bleve's phrase searcher: normalized on its own, until a query
	// around it normalizes it again.
	if w := must.Weight(); w > 0 {
		must.SetQueryNorm(1 / math.Sqrt(w))
	}
	return &phraseSearcher{Searcher: must, words: q.words}, nil
}

// phraseSearcher is the documents of a conjunction of a phrase's words
// where the words are in order.
type phraseSearcher struct {
	search.Searcher
	words [][]string
}

func (s *phraseSearcher) Next(ctx *search.SearchContext) (*search.DocumentMatch, error) {
	d, err := s.Searcher.Next(ctx)
	return s.check(ctx, d, err)
}

func (s *phraseSearcher) Advance(ctx *search.SearchContext, id index.IndexInternalID) (*search.DocumentMatch, error) {
	d, err := s.Searcher.Advance(ctx, id)
	return s.check(ctx, d, err)
}

// check returns d if it holds the phrase, or else the next document that
// does.
func (s *phraseSearcher) check(ctx *search.SearchContext, d *search.DocumentMatch, err error) (*search.DocumentMatch, error) {
	for d != nil && err == nil {
		if s.holds(d.FieldTermLocations) {
			return d, nil
		}
		ctx.DocumentMatchPool.Put(d)
		d, err = s.Searcher.Next(ctx)
	}
	return nil, err
}

func (s *phraseSearcher) Min() int { return 0 }

// holds reports whether locs (of one document, one field) have the words
// at consecutive positions.
func (s *phraseSearcher) holds(locs []search.FieldTermLocation) bool {
	first := 0
	for len(s.words[first]) == 0 {
		first++ // not reached: the analyzer's tokens start the phrase
	}
	for _, start := range locs {
		if !slices.Contains(s.words[first], start.Term) {
			continue
		}
		found := true
		for k := first + 1; k < len(s.words) && found; k++ {
			if len(s.words[k]) == 0 {
				continue
			}
			found = false
			pos := start.Location.Pos + uint64(k-first)
			for _, l := range locs {
				if l.Location.Pos == pos && l.Field == start.Field && slices.Contains(s.words[k], l.Term) &&
					l.Location.ArrayPositions.Equals(start.Location.ArrayPositions) {
					found = true
					break
				}
			}
		}
		if found {
			return true
		}
	}
	return false
}
