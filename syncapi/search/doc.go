// Package search is the full-text index of room events behind POST /search
// (client-server-api "Server Side Search"), kept with
// github.com/blevesearch/bleve/v2 in a directory of its own
// (<data_dir>/search.bleve).
//
// What is indexed: content.body of m.room.message events, content.name of
// m.room.name and content.topic (and the text/plain m.topic) of
// m.room.topic, with the room, sender, type and stream position of each
// event. Encrypted events have no readable content and are not indexed;
// a redacted event is removed.
//
// How it stays current: the index stores, with each batch it writes, the
// stream position up to which every event is indexed. It follows the
// roomserver's output stream only to learn that there is something new,
// and then indexes every event after that position from the database, so
// a crash loses nothing (the batch and its position are written
// together), nothing is indexed twice, and a missing index directory is
// rebuilt from the database at start. Searches run meanwhile see what is
// indexed so far. History fetched from other servers (backfill) is stored
// below position 0, handed out downwards, and not published: a second
// stored position, indexed down to, follows it the same way.
//
// The recent order looks the position of each hit up in arrays read once
// per index segment (recent.go); a very common word is restricted to the
// searcher's rooms before it is read (restrict.go); phrases are checked by
// a searcher of ours (phrase.go).
//
// Who may see what is the caller's: a Query lists the rooms to search and,
// for each, the stream positions of the events the searcher may see
// (syncapi/relations.Ranges), which the index applies in the query itself,
// so that counts and pages are exact.
//
// Each process that serves /search keeps its own index. In a deployment of
// several processes, turn the index on in one (search_index) and route
// POST /_matrix/client/v3/search to it.
package search
