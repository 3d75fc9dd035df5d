// Package keys keeps the server's ed25519 signing keys: the current key,
// which signs events, federation requests and key responses, and the old
// keys retired by rotation, which remote servers may still need to verify
// what they signed (published under old_verify_keys of GET
// /_matrix/key/v2/server, server-server API "Publishing Keys").
//
// The current key is stored in Synapse's format, one line
// "ed25519 <version> <unpadded base64 seed>", so a key can move between
// Myelin and Synapse. Old keys live next to it in old_signing_keys, one line
// "ed25519 <version> <unpadded base64 public key> <expired_ts>" each, the
// time in milliseconds since the Unix epoch.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OldKey is a retired verify key.
type OldKey struct {
	ID        string // "ed25519:<version>"
	Public    ed25519.PublicKey
	ExpiredTS int64 // when it stopped being used, ms since the Unix epoch
}

// Ring holds the current signing key and the old verify keys. It is safe
// for concurrent use.
type Ring struct {
	path    string // current key file
	oldPath string // old verify keys file

	mu  sync.RWMutex
	id  string
	key ed25519.PrivateKey
	old []OldKey
}

// OldKeysFile is the name of the old verify keys file, in the directory of
// the signing key file.
const OldKeysFile = "old_signing_keys"

// LoadOrGenerate reads the signing key at path, generating and saving a new
// one (mode 0600) when the file does not exist, and the old verify keys kept
// beside it.
func LoadOrGenerate(path string) (*Ring, error) {
	r := &Ring{path: path, oldPath: filepath.Join(filepath.Dir(path), OldKeysFile)}
	data, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = r.generate()
	}
	if err != nil {
		return nil, err
	}
	if r.id, r.key, err = parseKeyFile(path, data); err != nil {
		return nil, err
	}
	if r.old, err = readOldKeys(r.oldPath); err != nil {
		return nil, err
	}
	// A rotation interrupted between its two writes leaves the current key
	// listed as old too; it is current.
	r.old = slices.DeleteFunc(r.old, func(k OldKey) bool { return k.ID == r.id })
	return r, nil
}

// generate writes a new key file and returns its contents. If another
// process created the file meanwhile, that file wins.
func (r *Ring) generate() ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the directory of signing key %s: %v: choose a writable signing_key_path or data_dir", r.path, unwrapPath(err))
	}
	version, key, err := newKey(nil)
	if err != nil {
		return nil, err
	}
	data := []byte(formatKey(version, key))
	if err := writeFile(r.path, data, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(r.path)
		}
		return nil, err
	}
	return data, nil
}

// readKeyFile reads the key file; a missing file is returned as
// fs.ErrNotExist unwrapped, for LoadOrGenerate to generate the key.
func readKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read signing key %s: %v: make it readable by the server's user (mode 0600)", path, unwrapPath(err))
	}
	return data, err
}

// Current returns the key that signs, and its key ID ("ed25519:<version>").
func (r *Ring) Current() (keyID string, key ed25519.PrivateKey) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.id, r.key
}

// Old returns the retired verify keys, oldest first.
func (r *Ring) Old() []OldKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.old)
}

// VerifyKey returns the public key with the given ID, current or old.
func (r *Ring) VerifyKey(keyID string) (ed25519.PublicKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if keyID == r.id {
		return r.key.Public().(ed25519.PublicKey), true
	}
	for _, k := range r.old {
		if k.ID == keyID {
			return k.Public, true
		}
	}
	return nil, false
}

// Rotate makes a new current key and keeps the previous one as an old
// verify key that expired at now. Both files are rewritten: the old keys
// first, so a crash in between never loses a key that signed something.
// A running server picks up a rotation done by another process (the
// rotate-signing-key command) only when it restarts.
func (r *Ring) Rotate(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	taken := []string{r.id}
	for _, k := range r.old {
		taken = append(taken, k.ID)
	}
	version, key, err := newKey(taken)
	if err != nil {
		return err
	}
	old := append(slices.Clone(r.old), OldKey{
		ID:        r.id,
		Public:    r.key.Public().(ed25519.PublicKey),
		ExpiredTS: now.UnixMilli(),
	})
	if err := writeFile(r.oldPath, []byte(formatOldKeys(old)), true); err != nil {
		return err
	}
	if err := writeFile(r.path, []byte(formatKey(version, key)), true); err != nil {
		return err
	}
	r.id, r.key, r.old = "ed25519:"+version, key, old
	return nil
}

// newKey returns a fresh key and a random version unlike any of taken.
func newKey(taken []string) (version string, key ed25519.PrivateKey, err error) {
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("cannot generate a signing key: %v: check the system's random source", err)
	}
	for {
		version = randomVersion()
		if !slices.Contains(taken, "ed25519:"+version) {
			return version, key, nil
		}
	}
}

// randomVersion returns 8 random letters and digits: within the spec's
// [a-zA-Z0-9_] for key versions, and unlikely to repeat.
func randomVersion() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := make([]byte, 0, 8)
	var b [1]byte
	for len(out) < 8 {
		rand.Read(b[:]) // crypto/rand.Read never fails
		// Drop bytes past the last whole multiple of 62: no modulo bias.
		if int(b[0]) < 256/len(alphabet)*len(alphabet) {
			out = append(out, alphabet[int(b[0])%len(alphabet)])
		}
	}
	return string(out)
}

// validVersion reports whether v fits the spec's key version grammar.
func validVersion(v string) bool {
	if v == "" {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func formatKey(version string, key ed25519.PrivateKey) string {
	return fmt.Sprintf("ed25519 %s %s\n", version, base64.RawStdEncoding.EncodeToString(key.Seed()))
}

func formatOldKeys(old []OldKey) string {
	var b strings.Builder
	for _, k := range old {
		fmt.Fprintf(&b, "ed25519 %s %s %d\n", strings.TrimPrefix(k.ID, "ed25519:"),
			base64.RawStdEncoding.EncodeToString(k.Public), k.ExpiredTS)
	}
	return b.String()
}

// decodeBase64 accepts unpadded base64 (what Matrix uses) and, leniently,
// padded base64.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// parseKeyFile reads a Synapse signing key file holding one key.
func parseKeyFile(path string, data []byte) (string, ed25519.PrivateKey, error) {
	const fix = "restore the file from a backup, or move it away to generate a new key (remote servers then fetch the new one)"
	var id string
	var key ed25519.PrivateKey
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if key != nil {
			return "", nil, fmt.Errorf("signing key %s line %d: more than one key in the file: keep only the key to sign with; %s", path, n+1, fix)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "ed25519" {
			return "", nil, fmt.Errorf("signing key %s line %d: expected \"ed25519 <version> <base64 seed>\": %s", path, n+1, fix)
		}
		if !validVersion(f[1]) {
			return "", nil, fmt.Errorf("signing key %s line %d: key version %q has characters outside [a-zA-Z0-9_]: %s", path, n+1, f[1], fix)
		}
		seed, err := decodeBase64(f[2])
		if err != nil || len(seed) != ed25519.SeedSize {
			return "", nil, fmt.Errorf("signing key %s line %d: the seed is not %d bytes of base64: %s", path, n+1, ed25519.SeedSize, fix)
		}
		id, key = "ed25519:"+f[1], ed25519.NewKeyFromSeed(seed)
	}
	if key == nil {
		return "", nil, fmt.Errorf("signing key %s is empty: %s", path, fix)
	}
	return id, key, nil
}

// readOldKeys reads the old verify keys file; a missing file means none.
func readOldKeys(path string) ([]OldKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read old signing keys %s: %v: make it readable by the server's user", path, unwrapPath(err))
	}
	const fix = "fix or delete that line (remote servers can then no longer check what the key signed)"
	var old []OldKey
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "ed25519" || !validVersion(f[1]) {
			return nil, fmt.Errorf("old signing keys %s line %d: expected \"ed25519 <version> <base64 public key> <expired_ts>\": %s", path, n+1, fix)
		}
		pub, err := decodeBase64(f[2])
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("old signing keys %s line %d: the public key is not %d bytes of base64: %s", path, n+1, ed25519.PublicKeySize, fix)
		}
		ts, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || ts < 0 {
			return nil, fmt.Errorf("old signing keys %s line %d: expired_ts %q is not milliseconds since 1970: %s", path, n+1, f[3], fix)
		}
		old = append(old, OldKey{ID: "ed25519:" + f[1], Public: ed25519.PublicKey(pub), ExpiredTS: ts})
	}
	return old, nil
}

// writeFile writes data to path with mode 0600 through a temporary file, so
// that a crash never leaves a half-written key. With replace false it fails
// with fs.ErrExist when path already exists.
func writeFile(path string, data []byte, replace bool) error {
	fail := func(err error) error {
		return fmt.Errorf("cannot write %s: %v: check that its directory is writable and the disk not full", path, unwrapPath(err))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path) // fails if path exists
		if errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
