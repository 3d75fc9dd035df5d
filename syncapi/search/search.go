package search

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	blevesearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/myelin-chat/myelin/storage"
)

// Keys that may be searched (search.yaml's keys) and their fields.
var keyFields = map[string]string{
	"content.body":  fieldBody,
	"content.name":  fieldName,
	"content.topic": fieldTopic,
}

// ValidKey reports whether key may be searched.
func ValidKey(key string) bool { _, ok := keyFields[key]; return ok }

// IndexedTypes are the event types the index holds.
var IndexedTypes = []string{"m.room.message", "m.room.name", "m.room.topic"}

// Room is a room to search and the stream positions of its events the
// searcher may see.
type Room struct {
	RoomID  string
	Visible []storage.PosRange
}

// Query is one search.
type Query struct {
	Term Parsed
	// Keys are the keys searched (all when empty).
	Keys  []string
	Rooms []Room
	// Senders, when not nil, keeps only their events; NotSenders leaves
	// theirs out. Types, when not nil, keeps only those of IndexedTypes.
	Senders, NotSenders, Types []string
	// ContainsURL, when set, keeps only messages with (or without) a url.
	ContainsURL *bool
	// Recent orders by stream position, newest first; otherwise by rank.
	Recent bool
	Limit  int
	// After continues from a previous page.
	After *Cursor
}

// Cursor is where a page ended: for the recent order, the position of its
// last hit; for rank, how many hits came before the next page.
type Cursor struct {
	Pos    int64
	Offset int
}

// Hit is one event found.
type Hit struct {
	EventID string
	Score   float64
}

// Result is a page of hits.
type Result struct {
	// Total is how many events match in all.
	Total uint64
	Hits  []Hit
	// More: there are hits after this page.
	More bool
}

// Search runs q. Hits carry their rank; the caller reads the events (and
// their positions, for the next page's Cursor).
func (ix *Index) Search(ctx context.Context, q Query) (*Result, error) {
	text := ix.textQuery(q)
	if text == nil || len(q.Rooms) == 0 || q.Limit <= 0 {
		return &Result{}, nil
	}
	// The rooms and the other conditions are a filter: unscored, and
	// consulted only for the documents the text matches, rather than
	// walked in step with the text (the rooms of a user hold many more
	// documents than most words). A word much more common than the rooms'
	// documents is restricted to them before it is read (restrict.go).
	visible := &visibleText{text: text, rooms: q.Rooms}
	var conditions []query.Query
	if q.Senders != nil {
		conditions = append(conditions, termsQuery(fieldSender, q.Senders))
	}
	if q.Types != nil {
		conditions = append(conditions, termsQuery(fieldType, q.Types))
	}
	if q.ContainsURL != nil {
		b := bleve.NewBoolFieldQuery(*q.ContainsURL)
		b.SetField(fieldURL)
		conditions = append(conditions, b)
	}
	switch len(conditions) {
	case 0:
	case 1:
		visible.conditions = conditions[0]
	default:
		visible.conditions = bleve.NewConjunctionQuery(conditions...)
	}
	bq := bleve.NewBooleanQuery()
	bq.AddMust(visible)
	if len(q.NotSenders) > 0 {
		bq.AddMustNot(termsQuery(fieldSender, q.NotSenders))
	}
	for _, t := range q.Term.MustNot {
		if tq := ix.termQuery(t, q.Keys); tq != nil {
			bq.AddMustNot(tq)
		}
	}
	// Rank pages by offset: sorting by score alone needs no doc values, and
	// the recent order pages after the last position, which new events
	// (always newer) cannot shift.
	if q.Recent && recentFromCache {
		if res, ok, err := ix.searchRecent(ctx, bq, q); ok || err != nil {
			return res, err
		}
	}
	req := bleve.NewSearchRequestOptions(bq, q.Limit+1, 0, false)
	if q.Recent {
		req.SortByCustom(blevesearch.SortOrder{&blevesearch.SortField{Field: fieldPos, Type: blevesearch.SortFieldAsString, Desc: true}})
		if q.After != nil {
			req.SearchAfter = []string{posTerm(q.After.Pos)}
		}
	} else {
		req.SortBy([]string{"-_score"})
		if q.After != nil {
			req.From = min(max(q.After.Offset, 0), maxOffset)
		}
	}
	res, err := ix.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out := &Result{Total: res.Total}
	for _, h := range res.Hits {
		if len(out.Hits) == q.Limit {
			out.More = true
			break
		}
		out.Hits = append(out.Hits, Hit{EventID: h.ID, Score: h.Score})
	}
	return out, nil
}

// textQuery is the query of the search term over the keys, nil when it
// can match nothing (no words, or only words the analyzer drops, such as
// "the").
func (ix *Index) textQuery(q Query) query.Query {
	var clauses []query.Query
	for i, clause := range q.Term.Must {
		var alts []query.Query
		for j, t := range clause {
			t.prefix = i == len(q.Term.Must)-1 && j == len(clause)-1
			if tq := ix.termQuery(t, q.Keys); tq != nil {
				alts = append(alts, tq)
			}
		}
		switch len(alts) {
		case 0:
			continue // every alternative is a stop word
		case 1:
			clauses = append(clauses, alts[0])
		default:
			clauses = append(clauses, bleve.NewDisjunctionQuery(alts...))
		}
	}
	if len(clauses) == 0 {
		return nil
	}
	if len(clauses) == 1 {
		return clauses[0]
	}
	return bleve.NewConjunctionQuery(clauses...)
}

// maxOffset bounds how deep rank pages go.
const maxOffset = 10_000

// minPrefix is the shortest word also matched as a prefix of longer words
// ("hell" finds "hello"), as search-as-you-type clients expect. Only the
// last word of a search term is a prefix (the one being typed): a short
// prefix starts many indexed words, and even the 32 most frequent of them
// cost (over 1,000,000 messages, a three-letter prefix took 3-5 times as
// long as a word alone).
const minPrefix = 4

// Bounds on a prefix's expansion: a short prefix starts thousands of
// indexed words, and a query over all of them reads all their postings.
// The most frequent maxPrefixTerms of the first maxPrefixScan words are
// kept: the words a person typing most likely means.
const (
	maxPrefixTerms = 32
	maxPrefixScan  = 20_000
)

// prefixQuery matches the indexed words of field that start with prefix
// (other than prefix itself, which the word's own query matches), nil when
// there are none.
func (ix *Index) prefixQuery(field, prefix string) query.Query {
	dict, err := ix.idx.FieldDictPrefix(field, []byte(prefix))
	if err != nil {
		return nil
	}
	defer dict.Close()
	type word struct {
		term  string
		count uint64
	}
	var words []word
	for range maxPrefixScan {
		e, err := dict.Next()
		if err != nil || e == nil {
			break
		}
		if e.Term == prefix {
			continue
		}
		words = append(words, word{e.Term, e.Count})
	}
	if len(words) > maxPrefixTerms {
		slices.SortFunc(words, func(a, b word) int { return cmp.Compare(b.count, a.count) })
		words = words[:maxPrefixTerms]
	}
	qs := make([]query.Query, 0, len(words))
	for _, w := range words {
		t := bleve.NewTermQuery(w.term)
		t.SetField(field)
		t.SetBoost(0.5) // an exact word ranks above a longer one
		qs = append(qs, t)
	}
	switch len(qs) {
	case 0:
		return nil
	case 1:
		return qs[0]
	}
	return bleve.NewDisjunctionQuery(qs...)
}

// termQuery matches t in any of keys; nil when t has no indexed token.
func (ix *Index) termQuery(t Term, keys []string) query.Query {
	tokens := ix.analyze(t.Text)
	if len(tokens) == 0 {
		return nil
	}
	if len(keys) == 0 {
		keys = []string{"content.body", "content.name", "content.topic"}
	}
	var alts []query.Query
	for _, k := range keys {
		field := keyFields[k]
		if t.Phrase || len(tokens) > 1 {
			alts = append(alts, newPhraseQuery(tokens, field))
			continue
		}
		m := bleve.NewMatchQuery(t.Text)
		m.SetField(field)
		m.Analyzer = en.AnalyzerName
		alts = append(alts, m)
		if word := strings.ToLower(t.Text); t.prefix && len([]rune(word)) >= minPrefix {
			if p := ix.prefixQuery(field, word); p != nil {
				alts = append(alts, p)
			}
		}
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return bleve.NewDisjunctionQuery(alts...)
}

// analyze returns the index terms of text.
func (ix *Index) analyze(text string) analysis.TokenStream {
	a := ix.idx.Mapping().AnalyzerNamed(en.AnalyzerName)
	if a == nil {
		return nil
	}
	return a.Analyze([]byte(text))
}

// roomsQuery matches events of the rooms at the positions visible in each.
func roomsQuery(rooms []Room) query.Query {
	var whole []string
	var parts []query.Query
	for _, r := range rooms {
		switch {
		case len(r.Visible) == 0:
		case wholeRoom(r):
			whole = append(whole, r.RoomID)
		default:
			parts = append(parts, roomQuery(r))
		}
	}
	if len(whole) > 0 {
		parts = append(parts, termsQuery(fieldRoom, whole))
	}
	switch len(parts) {
	case 0:
		return bleve.NewMatchNoneQuery()
	case 1:
		return parts[0]
	}
	return bleve.NewDisjunctionQuery(parts...)
}

// wholeRoom reports whether the searcher may see every event of r.
func wholeRoom(r Room) bool {
	return len(r.Visible) == 1 && r.Visible[0] == storage.AllPositions[0]
}

// roomQuery matches the events of r at the positions visible in it.
func roomQuery(r Room) query.Query {
	room := bleve.NewTermQuery(r.RoomID)
	room.SetField(fieldRoom)
	if wholeRoom(r) {
		return room
	}
	if len(r.Visible) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	var ranges []query.Query
	for _, pr := range r.Visible {
		ranges = append(ranges, posRange(pr))
	}
	var vis query.Query = ranges[0]
	if len(ranges) > 1 {
		vis = bleve.NewDisjunctionQuery(ranges...)
	}
	return bleve.NewConjunctionQuery(room, vis)
}

// posRange matches positions in r (After exclusive, Upto inclusive), the
// negative ones of backfilled history too. Positions are within ±2^53, so
// float64 holds them exactly.
func posRange(r storage.PosRange) query.Query {
	var lo, hi *float64
	if r.After > math.MinInt64 {
		lo = new(float64(r.After))
	}
	if r.Upto < math.MaxInt64 {
		hi = new(float64(r.Upto))
	}
	incl, excl := true, false
	q := bleve.NewNumericRangeInclusiveQuery(lo, hi, &excl, &incl)
	q.SetField(fieldSeq)
	return q
}

// termsQuery matches documents whose keyword field is one of values.
func termsQuery(field string, values []string) query.Query {
	if len(values) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	qs := make([]query.Query, len(values))
	for i, v := range values {
		t := bleve.NewTermQuery(v)
		t.SetField(field)
		qs[i] = t
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return bleve.NewDisjunctionQuery(qs...)
}

// Highlights returns the words of texts that the search term matched, as
// they are written there (after stemming, "running" may match "run"), each
// once, in the order found.
func (ix *Index) Highlights(p Parsed, texts []string) []string {
	terms := map[string]bool{}
	var prefixes []string
	for i, clause := range p.Must {
		for j, t := range clause {
			tokens := ix.analyze(t.Text)
			for _, tok := range tokens {
				terms[string(tok.Term)] = true
			}
			last := i == len(p.Must)-1 && j == len(clause)-1
			if last && !t.Phrase && len(tokens) == 1 && len([]rune(t.Text)) >= minPrefix {
				prefixes = append(prefixes, strings.ToLower(t.Text))
			}
		}
	}
	seen := map[string]bool{}
	out := []string{}
	for _, text := range texts {
		for _, tok := range ix.analyze(text) {
			if tok.Start < 0 || tok.End > len(text) || tok.Start >= tok.End {
				continue
			}
			word := text[tok.Start:tok.End]
			match := terms[string(tok.Term)]
			for _, p := range prefixes {
				match = match || strings.HasPrefix(strings.ToLower(word), p)
			}
			if match && !seen[word] {
				seen[word] = true
				out = append(out, word)
			}
		}
	}
	return out
}
