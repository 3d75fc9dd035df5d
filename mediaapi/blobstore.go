package mediaapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"
)

// BlobStore keeps file contents by their SHA-256. It is small on purpose,
// so that an S3-compatible store can implement it: writes stream into a
// BlobWriter, which names the content when committed, and reads need
// seeking (range requests).
type BlobStore interface {
	// Create starts a new blob.
	Create() (BlobWriter, error)
	// Open opens the blob named by its hex SHA-256; a missing blob is an
	// error wrapping fs.ErrNotExist.
	Open(sha256 string) (Blob, error)
	// Delete removes a blob; a missing one is no error.
	Delete(sha256 string) error
}

// BlobWriter receives a blob's content.
type BlobWriter interface {
	io.Writer
	// Commit stores what was written and returns its hex SHA-256 and
	// size. Content already stored under that hash is kept as is.
	Commit() (sha256 string, size int64, err error)
	// Abort discards what was written; after Commit it does nothing.
	Abort()
}

// Blob is a stored content being read.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// FileStore is a BlobStore in a local directory: blobs are files at
// ab/cd/abcd... (the hash's first two bytes as directories, so no
// directory grows too large), written first in tmp/ and renamed into
// place, so a blob is never seen half-written.
type FileStore struct {
	dir string
}

// NewFileStore opens (creating) a file store in dir.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("media.store_path %q: cannot create it: %v (check --media-store-path and its permissions)", dir, err)
	}
	// Leftovers of writes interrupted by a crash.
	if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil {
		for _, e := range entries {
			os.Remove(filepath.Join(dir, "tmp", e.Name()))
		}
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(sum string) (string, error) {
	if len(sum) != 64 {
		return "", fmt.Errorf("blob name %q is not a hex SHA-256", sum)
	}
	for _, c := range sum {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("blob name %q is not a hex SHA-256", sum)
		}
	}
	return filepath.Join(s.dir, sum[:2], sum[2:4], sum), nil
}

// Create implements BlobStore.
func (s *FileStore) Create() (BlobWriter, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "upload-*")
	if err != nil {
		return nil, fmt.Errorf("media store: %w", err)
	}
	return &fileWriter{s: s, f: f, h: sha256.New()}, nil
}

// Open implements BlobStore.
func (s *FileStore) Open(sum string) (Blob, error) {
	p, err := s.path(sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileBlob{File: f, size: st.Size(), mod: st.ModTime()}, nil
}

// Delete implements BlobStore.
func (s *FileStore) Delete(sum string) error {
	p, err := s.path(sum)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

type fileBlob struct {
	*os.File
	size int64
	mod  time.Time
}

func (b *fileBlob) Size() int64        { return b.size }
func (b *fileBlob) ModTime() time.Time { return b.mod }

type fileWriter struct {
	s    *FileStore
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// parallelHashBytes is the write size from which the hash is computed
// on another core while the file is written: hashing and writing cost
// about the same, so large uploads go nearly twice as fast.
const parallelHashBytes = 64 << 10

func (w *fileWriter) Write(p []byte) (int, error) {
	if len(p) < parallelHashBytes {
		n, err := w.f.Write(p)
		w.h.Write(p[:n])
		w.n += int64(n)
		return n, err
	}
	hashed := make(chan struct{})
	go func() {
		w.h.Write(p)
		close(hashed)
	}()
	n, err := w.f.Write(p)
	<-hashed
	w.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

func (w *fileWriter) Commit() (string, int64, error) {
	if w.done {
		return "", 0, errors.New("media store: blob already committed or aborted")
	}
	w.done = true
	tmp := w.f.Name()
	fail := func(err error) (string, int64, error) {
		w.f.Close()
		os.Remove(tmp)
		return "", 0, fmt.Errorf("media store: %w", err)
	}
	// The database row that names this blob commits after this returns:
	// the content must be on disk first.
	if err := w.f.Sync(); err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		return fail(err)
	}
	sum := hex.EncodeToString(w.h.Sum(nil))
	p, _ := w.s.path(sum)
	if _, err := os.Stat(p); err == nil {
		// Deduplicated: the same content is already stored.
		os.Remove(tmp)
		return sum, w.n, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fail(err)
	}
	// The rename itself must survive a crash too.
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return "", 0, fmt.Errorf("media store: %w", err)
		}
	}
	return sum, w.n, nil
}

func (w *fileWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}
