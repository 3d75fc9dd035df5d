package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// Keys of the values the index keeps beside its documents.
var (
	posKey    = []byte("myelin.pos")    // decimal stream position indexed up to
	lowKey    = []byte("myelin.low")    // decimal stream position indexed down to
	schemaKey = []byte("myelin.schema") // schemaVersion
)

// schemaVersion names the mapping and the document shape; an index written
// with another is rebuilt.
const schemaVersion = "4"

// catchUpBatch is how many events one index batch (and one database read)
// takes. bleve's cost per document falls with the batch's size (each batch
// is a segment to build and later merge): measured here, about 110 µs per
// message in batches of 300 and 85 µs in batches of 2,000, little less
// beyond.
const catchUpBatch = 2000

// indexGather is how long the indexer lets new events gather after a
// wake-up before it indexes them: long enough that a busy server indexes
// batches of a thousand or more (see catchUpBatch). A search never waits
// for it (WaitFor cuts it short).
const indexGather = time.Second

// NearlyCurrent is how far (in stream positions) the index may lag behind
// and still be worth a search's waiting for it (WaitFor): more than a busy
// server gathers in indexGather, far less than a rebuild from the database.
const NearlyCurrent = 10_000

// Field names of the documents.
const (
	fieldBody   = "body"
	fieldName   = "name"
	fieldTopic  = "topic"
	fieldRoom   = "room_id"
	fieldSender = "sender"
	fieldType   = "type"
	fieldPos    = "pos"
	fieldSeq    = "seq"
	fieldURL    = "url"
)

// Config is what an Index is built from.
type Config struct {
	DB  *storage.DB
	Bus *bus.Bus
	// Path is the index directory (created, and filled from the database,
	// when missing).
	Path   string
	Logger *slog.Logger
}

// Index is the search index of one process.
type Index struct {
	db     *storage.DB
	bus    *bus.Bus
	idx    bleve.Index
	logger *slog.Logger
	// positions serves the recent order (recent.go).
	positions positionCache

	mu      sync.Mutex
	pos     int64         // every event up to here is indexed
	changed chan struct{} // closed and replaced when pos moves
	// low: every event from here up to 0 is indexed (backfilled history,
	// below 0). Only the indexing goroutine uses it.
	low int64

	wake chan struct{}
	// urgent asks the indexer not to let a burst gather: a search waits.
	urgent chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// Open opens the index at cfg.Path, creating it when missing (or
// unreadable, or of another schema), and starts keeping it current. Close
// it before the bus closes.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	if cfg.DB == nil || cfg.Bus == nil || cfg.Path == "" {
		return nil, errors.New("search: DB, Bus and Path are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "search")
	idx, err := openOrCreate(cfg.Path, logger)
	if err != nil {
		return nil, err
	}
	ix := &Index{db: cfg.DB, bus: cfg.Bus, idx: idx, logger: logger,
		changed: make(chan struct{}), wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
	for _, cursor := range []struct {
		key []byte
		pos *int64
	}{{posKey, &ix.pos}, {lowKey, &ix.low}} {
		if raw, err := idx.GetInternal(cursor.key); err == nil && len(raw) > 0 {
			if *cursor.pos, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
				idx.Close()
				return nil, fmt.Errorf("search: index %s: bad position %q", cfg.Path, raw)
			}
		}
	}
	if ix.pos == 0 {
		logger.Info("building the search index from the database", "path", cfg.Path)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ix.cancel = cancel
	ix.done.Add(2)
	go func() { defer ix.done.Done(); ix.indexLoop(runCtx) }()
	go func() { defer ix.done.Done(); ix.follow(runCtx) }()
	return ix, nil
}

// openOrCreate opens the index at path, or creates it: when it does not
// exist, cannot be opened, or has another schema (it is then rebuilt from
// the database, which holds everything it holds).
func openOrCreate(path string, logger *slog.Logger) (bleve.Index, error) {
	idx, err := bleve.Open(path)
	if err == nil {
		if v, _ := idx.GetInternal(schemaKey); string(v) == schemaVersion {
			return idx, nil
		}
		idx.Close()
		logger.Warn("search index of another version; rebuilding it", "path", path)
	} else if !errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		logger.Warn("cannot open the search index; rebuilding it", "path", path, "err", err)
	}
	if err := os.RemoveAll(path); err != nil {
		return nil, fmt.Errorf("search: remove %s: %w", path, err)
	}
	idx, err = bleve.New(path, indexMapping())
	if err != nil {
		return nil, fmt.Errorf("search: create the index in %s: %w (check the data directory's permissions)", path, err)
	}
	if err := idx.SetInternal(schemaKey, []byte(schemaVersion)); err != nil {
		idx.Close()
		return nil, fmt.Errorf("search: %w", err)
	}
	return idx, nil
}

func indexMapping() mapping.IndexMapping {
	text := bleve.NewTextFieldMapping()
	text.Analyzer = en.AnalyzerName
	text.Store = false
	text.IncludeInAll = false
	text.IncludeTermVectors = true // phrase queries need positions
	text.DocValues = false
	keyword := bleve.NewKeywordFieldMapping()
	keyword.Store = false
	keyword.IncludeInAll = false
	keyword.IncludeTermVectors = false
	keyword.DocValues = false
	// The position is a keyword of fixed width (posTerm), not a bleve
	// number: a number is indexed as 8 terms of decreasing precision, all
	// of them in its doc values, which sorting reads for every hit; one
	// short term decodes several times faster (measured: the doc values
	// were most of a search's time), and sorts and ranges the same.
	pos := bleve.NewKeywordFieldMapping()
	pos.Store = false
	pos.IncludeInAll = false
	pos.IncludeTermVectors = false
	pos.DocValues = true
	// The position again as a bleve number, for the visibility ranges: a
	// range of keywords expands to every position in it (hundreds of
	// thousands of terms), a numeric range to a few dozen terms of the
	// number's coarser precisions.
	seq := bleve.NewNumericFieldMapping()
	seq.Store = false
	seq.IncludeInAll = false
	seq.DocValues = false
	flag := bleve.NewBooleanFieldMapping()
	flag.Store = false
	flag.IncludeInAll = false
	flag.DocValues = false

	doc := bleve.NewDocumentStaticMapping()
	for _, f := range []string{fieldBody, fieldName, fieldTopic} {
		doc.AddFieldMappingsAt(f, text)
	}
	for _, f := range []string{fieldRoom, fieldSender, fieldType} {
		doc.AddFieldMappingsAt(f, keyword)
	}
	doc.AddFieldMappingsAt(fieldPos, pos)
	doc.AddFieldMappingsAt(fieldSeq, seq)
	doc.AddFieldMappingsAt(fieldURL, flag)

	im := bleve.NewIndexMapping()
	im.DefaultMapping = doc
	im.DefaultAnalyzer = en.AnalyzerName
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	return im
}

// Close stops following the stream and closes the index.
func (ix *Index) Close() error {
	ix.cancel()
	ix.done.Wait()
	return ix.idx.Close()
}

// Pos is the stream position up to which every event is indexed.
func (ix *Index) Pos() int64 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.pos
}

// WaitFor waits until every event up to pos is indexed, or ctx ends.
func (ix *Index) WaitFor(ctx context.Context, pos int64) error {
	for {
		ix.mu.Lock()
		reached, changed := ix.pos >= pos, ix.changed
		ix.mu.Unlock()
		if reached {
			return nil
		}
		ix.poke()
		select {
		case ix.urgent <- struct{}{}:
		default:
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Wake asks the indexer to look for events to index now, for history
// stored without being published (backfill), which it would otherwise
// find within a few seconds.
func (ix *Index) Wake() { ix.poke() }

func (ix *Index) poke() {
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// indexLoop indexes what is new whenever it is woken, and every few
// seconds in case a wake-up was missed.
func (ix *Index) indexLoop(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	failures := 0
	for {
		if err := ix.catchUp(ctx); err != nil && ctx.Err() == nil {
			failures++
			ix.logger.Warn("indexing failed; retrying", "err", err, "failures", failures)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(failures)*time.Second, 30*time.Second)):
			}
			continue
		}
		failures = 0
		// Read the positions of new segments now rather than in the next
		// search in the recent order (140 ms over 1,000,000 events).
		ix.readPositions()
		select {
		case <-ctx.Done():
			return
		case <-ix.wake:
			// Let a burst gather first: one batch of many events costs
			// the index far less than many batches of a few, and taking
			// them one by one halved the rate the server could accept
			// messages at. Search may lag the timeline by this much,
			// except for a search waiting for what was just sent.
			select {
			case <-ctx.Done():
				return
			case <-ix.urgent:
			case <-time.After(indexGather):
			}
		case <-tick.C:
		}
	}
}

// catchUp indexes every event after the indexed position, and the history
// received late below the position indexed down to.
func (ix *Index) catchUp(ctx context.Context) error {
	if err := ix.catchUpNew(ctx); err != nil {
		return err
	}
	return ix.catchUpHistory(ctx)
}

// catchUpNew indexes every event after the indexed position.
func (ix *Index) catchUpNew(ctx context.Context) error {
	for ctx.Err() == nil {
		// Positions commit in order, so once the events up to top are read,
		// every event up to top is indexed (positions without an event
		// belong to receipts and the like).
		top, err := ix.db.StreamPos(ctx)
		if err != nil {
			return err
		}
		from := ix.Pos()
		evs, err := ix.db.EventsAfterPos(ctx, from, catchUpBatch)
		if err != nil {
			return err
		}
		upto := top
		if len(evs) == catchUpBatch {
			upto = evs[len(evs)-1].StreamPos
		} else if len(evs) > 0 {
			upto = max(upto, evs[len(evs)-1].StreamPos)
		}
		if upto <= from {
			return nil
		}
		if err := ix.indexEvents(ctx, evs, posKey, upto); err != nil {
			return err
		}
		ix.mu.Lock()
		ix.pos = upto
		close(ix.changed)
		ix.changed = make(chan struct{})
		ix.mu.Unlock()
		if len(evs) < catchUpBatch {
			return nil
		}
	}
	return ctx.Err()
}

// catchUpHistory indexes the events below the position indexed down to:
// history fetched from other servers (backfill), which the roomserver
// stores at positions below every other, handed out downwards as it comes,
// and does not publish (the indexer finds it when woken: by Wake, by new
// events, or every few seconds). Read downwards, every event from the lowest
// read up to 0 is then indexed, as positions above it are for new events.
func (ix *Index) catchUpHistory(ctx context.Context) error {
	for ctx.Err() == nil {
		evs, err := ix.db.EventsBeforePos(ctx, min(ix.low, 0), catchUpBatch)
		if err != nil || len(evs) == 0 {
			return err
		}
		low := evs[len(evs)-1].StreamPos
		if err := ix.indexEvents(ctx, evs, lowKey, low); err != nil {
			return err
		}
		ix.low = low
		if len(evs) < catchUpBatch {
			return nil
		}
	}
	return ctx.Err()
}

// indexEvents writes evs and a cursor's new position (posKey or lowKey)
// in one batch.
func (ix *Index) indexEvents(ctx context.Context, evs []*storage.EventRecord, cursor []byte, pos int64) error {
	b := ix.idx.NewBatch()
	var redacted []string
	for _, ev := range evs {
		if ev.Rejected || ev.SoftFailed || ev.StreamPos == 0 {
			continue
		}
		if ev.Type == "m.room.redaction" && ev.Redacts != "" {
			redacted = append(redacted, ev.Redacts)
			continue
		}
		if doc := documentOf(ev); doc != nil {
			if err := b.Index(ev.EventID, doc); err != nil {
				return fmt.Errorf("search: index %s: %w", ev.EventID, err)
			}
		}
	}
	if len(redacted) > 0 {
		// Only redactions that were applied remove their target.
		targets, err := ix.db.EventsByID(ctx, redacted)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if t.RedactedBy != "" {
				b.Delete(t.EventID)
			}
		}
	}
	b.SetInternal(cursor, []byte(strconv.FormatInt(pos, 10)))
	if err := ix.idx.Batch(b); err != nil {
		return fmt.Errorf("search: write a batch: %w", err)
	}
	return nil
}

// posTerm is the index term of a stream position: 16 hexadecimal digits
// of the position with its sign bit flipped, so that the order of terms is
// the order of positions, the negative positions of backfilled events
// (older history) included.
func posTerm(pos int64) string {
	const width = 16
	s := strconv.FormatUint(uint64(pos)^signBit, 16)
	return strings.Repeat("0", width-len(s)) + s
}

// signBit is the sign bit of an int64.
const signBit = 1 << 63

// parsePosTerm is the position of a posTerm.
func parsePosTerm(term []byte) (int64, bool) {
	u, err := strconv.ParseUint(string(term), 16, 64)
	return int64(u ^ signBit), err == nil
}

// documentOf returns the document of an event, or nil when the event has
// nothing to search.
func documentOf(ev *storage.EventRecord) map[string]any {
	if ev.RedactedBy != "" {
		return nil
	}
	content := gjson.GetBytes(ev.JSON, "content")
	doc := map[string]any{
		fieldRoom: ev.RoomID, fieldSender: ev.Sender, fieldType: ev.Type,
		fieldPos: posTerm(ev.StreamPos), fieldSeq: float64(ev.StreamPos),
	}
	switch {
	case ev.Type == "m.room.message" && ev.StateKey == nil:
		body := content.Get("body")
		if body.Type != gjson.String || body.Str == "" {
			return nil
		}
		doc[fieldBody] = body.Str
		doc[fieldURL] = content.Get("url").Type == gjson.String
	case ev.Type == "m.room.name" && ev.StateKey != nil && *ev.StateKey == "":
		name := content.Get("name").Str
		if name == "" {
			return nil
		}
		doc[fieldName] = name
	case ev.Type == "m.room.topic" && ev.StateKey != nil && *ev.StateKey == "":
		topic := TopicText(content)
		if topic == "" {
			return nil
		}
		doc[fieldTopic] = topic
	default:
		return nil
	}
	return doc
}

// TopicText returns the searchable text of an m.room.topic content: topic,
// and the text/plain body of m.topic when it differs.
func TopicText(content gjson.Result) string {
	topic := content.Get("topic").Str
	content.Get("m\\.topic.m\\.text").ForEach(func(_, v gjson.Result) bool {
		mime := v.Get("mimetype").Str
		if (mime == "" || mime == "text/plain") && v.Get("body").Type == gjson.String {
			if body := v.Get("body").Str; body != topic && !strings.Contains(topic, body) {
				topic = strings.TrimSpace(topic + "\n" + body)
			}
			return false
		}
		return true
	})
	return topic
}

// follow wakes the indexer for every event of the roomserver's output
// stream, with an ordered consumer from now on: what was missed while the
// process was down is found by position in the database, not replayed.
func (ix *Index) follow(ctx context.Context) {
	js := ix.bus.JetStream()
	for ctx.Err() == nil {
		err := ix.consume(ctx, js)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			ix.logger.Warn("roomserver output stream: resubscribing", "err", err)
		}
		ix.poke()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (ix *Index) consume(ctx context.Context, js jetstream.JetStream) error {
	stream, err := js.Stream(ctx, ix.bus.StreamName(roomserver.OutputStream))
	if err != nil {
		return err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ix.bus.Subject(roomserver.OutputSubject)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(jetstream.Msg) { ix.poke() })
	if err != nil {
		return err
	}
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-cc.Closed():
		return errors.New("consumer closed")
	}
}
