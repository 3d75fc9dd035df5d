// Package storage is Myelin's database: the schema, its migrations and every
// SQL statement the server runs. One package and one set of statements serve
// both SQLite (the embedded default) and PostgreSQL. The few differences in
// SQL between them are in dialect.go and nowhere else; how each database is
// connected to and tuned is in open.go.
//
// # Writing SQL for both databases
//
// Statements are written once, in the subset both databases accept:
//
//   - Placeholders are $1, $2, ... (both drivers bind them natively; a
//     placeholder may repeat).
//   - Integers, including millisecond timestamps, are BIGINT (SQLite stores
//     every integer as up to 64 bits; PostgreSQL's BIGINT is 64 bits).
//   - Text, including JSON, is TEXT. JSON is kept as the bytes we received
//     or produced, never as PostgreSQL jsonb, which reorders keys and would
//     break signed events.
//   - Booleans are BOOLEAN with TRUE/FALSE literals and Go bool arguments.
//     PostgreSQL has a real boolean; SQLite stores 0/1 and database/sql
//     scans that back into a bool.
//   - Binary data is BYTEA; the SQLite dialect rewrites it to BLOB.
//   - An auto-numbered key is "BIGSERIAL PRIMARY KEY"; the SQLite dialect
//     rewrites it to "INTEGER PRIMARY KEY AUTOINCREMENT" (a rowid that is
//     never reused, like a sequence).
//   - A table ending in "/*WITHOUT ROWID*/" is a WITHOUT ROWID table on
//     SQLite (its primary key's B-tree holds the rows: one page written per
//     insert instead of two) and an ordinary one on PostgreSQL. For tables
//     of small rows written often and read by their key.
//   - Upserts use INSERT ... ON CONFLICT (cols) DO NOTHING / DO UPDATE SET,
//     and RETURNING is available: both databases implement them alike.
//
// Adding a table is a migration file in migrations/ (the next number) and a
// small file of queries: methods on *Tx for use in a transaction, and on *DB
// for a single statement (reads go through db.read, the reader pool with
// its cache of prepared statements, reader.go; writes through WithTx).
// accounts.go is the pattern.
//
// # SQLite
//
// The driver is modernc.org/sqlite, which is SQLite compiled to Go: no cgo,
// so `go install` and cross-compiling need no C toolchain. It was chosen by
// measuring it against github.com/mattn/go-sqlite3 (cgo) with the
// benchmarks in driver_bench_test.go; the figures are in BENCHMARKS.md. The
// two were equal within noise where it matters: a committed transaction
// costs one fsync (~0.2 ms here) with either, and a point read ~4.5 µs.
// mattn was faster (up to 2x) only where SQLite's own CPU work dominates:
// 100-row transactions and commits without fsync.
//
// Settings (sqliteDSN and openSQLite in open.go):
//   - journal_mode=WAL: readers never block the writer nor the writer them.
//   - synchronous=FULL: each commit fsyncs the WAL before it returns. A kill
//     -9 loses nothing with NORMAL either (the WAL is written to the OS
//     before commit returns), but NORMAL may lose the last commits on power
//     loss or an OS crash. A homeserver acknowledges events to clients and
//     signs and sends them to other servers; forgetting one afterwards
//     breaks the room's history for everyone. FULL is what PostgreSQL does
//     by default (synchronous_commit=on). It costs ~0.2 ms per commit here
//     (NORMAL: ~0.03 ms); batching rows per transaction amortises it.
//   - One writer connection and a pool of query_only readers, as two
//     *sql.DB handles. All writes go through WithTx on the writer, so within
//     a process writers queue in database/sql (honouring their contexts)
//     instead of polling SQLite's lock; transactions begin IMMEDIATE so that
//     a transaction that reads then writes cannot fail to upgrade its lock
//     (SQLITE_BUSY_SNAPSHOT) when another process writes. Measured, a pool
//     of 8 writer connections contending under busy_timeout was ~25% slower
//     than one, since SQLite admits one writer at a time and the rest poll.
//   - busy_timeout=5000 ms: covers other processes (a second myelin, the
//     sqlite3 shell) and WAL checkpoints; WithTx retries beyond it.
//   - foreign_keys=ON: off by default in SQLite, on in PostgreSQL.
//   - temp_store=MEMORY on the writer: the roomserver sets a savepoint per
//     job of a batch, and SQLite copies each page a savepoint's job changes
//     into a statement journal first. By default that journal spills to a
//     temporary file past 64 KiB, which a batch of ten sends passes, so
//     every page copy became a pwrite (~10% of the server's CPU under the
//     send benchmark); in memory it is a memcpy. The journal holds only the
//     pages one transaction changes, so it stays small.
//
// # PostgreSQL
//
// The driver is github.com/lib/pq. Transactions run at PostgreSQL's default
// isolation, READ COMMITTED. Migrations run under an advisory lock so that
// several processes starting at once against one database apply each
// migration exactly once. SELECT ... FOR UPDATE is PostgreSQL-only SQL: on
// SQLite every transaction already holds the database's write lock, so a
// query that needs it belongs behind a helper in dialect.go.
package storage
