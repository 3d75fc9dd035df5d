package keys

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var keyIDPattern = regexp.MustCompile(`^ed25519:[a-zA-Z0-9]{8}$`)

func TestGenerateThenReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "signing.key")
	r1, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	id1, key1 := r1.Current()
	if !keyIDPattern.MatchString(id1) {
		t.Errorf("key ID %q does not match %v", id1, keyIDPattern)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^ed25519 [a-zA-Z0-9]{8} [A-Za-z0-9+/]{43}\n$`).Match(data) {
		t.Errorf("key file %q is not in Synapse's format", data)
	}

	r2, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	id2, key2 := r2.Current()
	if id1 != id2 || !key1.Equal(key2) {
		t.Errorf("reload gave %s, want the same key %s", id2, id1)
	}
	if len(r2.Old()) != 0 {
		t.Errorf("a new key has old keys: %v", r2.Old())
	}
}

// A key written by Synapse (generate_signing_key) loads, and signs like the
// seed says: the test vector key of the spec's appendices, "Signing JSON".
func TestSynapseKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example.signing.key")
	seed := "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
	if err := os.WriteFile(path, []byte("ed25519 a_Yu2h "+seed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	id, key := r.Current()
	if id != "ed25519:a_Yu2h" {
		t.Errorf("key ID = %q", id)
	}
	// The spec's signature of {} with this key.
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(key, []byte("{}")))
	if want := "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"; sig != want {
		t.Errorf("signature of {} = %s, want %s", sig, want)
	}
}

func TestRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	r, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	firstID, firstKey := r.Current()
	t1 := time.UnixMilli(1_700_000_000_123)
	if err := r.Rotate(t1); err != nil {
		t.Fatal(err)
	}
	secondID, _ := r.Current()
	if secondID == firstID {
		t.Fatal("rotation kept the key ID")
	}
	want := OldKey{ID: firstID, Public: firstKey.Public().(ed25519.PublicKey), ExpiredTS: t1.UnixMilli()}
	checkOld := func(r *Ring, want ...OldKey) {
		t.Helper()
		got := r.Old()
		if len(got) != len(want) {
			t.Fatalf("old keys = %v, want %v", got, want)
		}
		for i := range want {
			if got[i].ID != want[i].ID || !got[i].Public.Equal(want[i].Public) || got[i].ExpiredTS != want[i].ExpiredTS {
				t.Errorf("old key %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	checkOld(r, want)
	if pub, ok := r.VerifyKey(firstID); !ok || !pub.Equal(want.Public) {
		t.Error("VerifyKey does not find the old key")
	}
	if _, ok := r.VerifyKey("ed25519:nope"); ok {
		t.Error("VerifyKey finds an unknown key")
	}

	// Persisted: a reload sees the new current key and the old one.
	r2, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := r2.Current(); id != secondID {
		t.Errorf("after reload current = %s, want %s", id, secondID)
	}
	checkOld(r2, want)

	// A second rotation keeps both old keys, oldest first.
	_, secondKey := r2.Current()
	t2 := t1.Add(time.Hour)
	if err := r2.Rotate(t2); err != nil {
		t.Fatal(err)
	}
	r3, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	checkOld(r3, want, OldKey{ID: secondID, Public: secondKey.Public().(ed25519.PublicKey), ExpiredTS: t2.UnixMilli()})
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("rotated key file mode = %v, want 0600", st.Mode().Perm())
	}
}

// A rotation cut off after writing old_signing_keys but before the new key
// lists the still-current key as old; loading drops that entry.
func TestInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	r, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	id, key := r.Current()
	line := "ed25519 " + strings.TrimPrefix(id, "ed25519:") + " " +
		base64.RawStdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)) + " 1000\n"
	if err := os.WriteFile(filepath.Join(dir, OldKeysFile), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	r2, err := LoadOrGenerate(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Old()) != 0 {
		t.Errorf("current key listed as old: %v", r2.Old())
	}
}

func TestBadFiles(t *testing.T) {
	const goodSeed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
	cases := []struct {
		name, key, old, want string
	}{
		{"empty", "", "", "is empty"},
		{"two fields", "ed25519 abc\n", "", `line 1: expected "ed25519 <version> <base64 seed>"`},
		{"wrong algorithm", "curve25519 abc " + goodSeed, "", `line 1: expected "ed25519`},
		{"bad version", "ed25519 a-b " + goodSeed, "", `key version "a-b" has characters outside`},
		{"short seed", "ed25519 abc AAAA", "", "the seed is not 32 bytes"},
		{"not base64", "ed25519 abc ****", "", "the seed is not 32 bytes"},
		{"two keys", "ed25519 a " + goodSeed + "\ned25519 b " + goodSeed, "", "line 2: more than one key"},
		{"old: three fields", "ed25519 abc " + goodSeed, "ed25519 x AAAA\n", `old signing keys`},
		{"old: bad public", "ed25519 abc " + goodSeed, "ed25519 x AAAA 5\n", "the public key is not 32 bytes"},
		{"old: bad ts", "ed25519 abc " + goodSeed, "ed25519 x " + strings.Repeat("A", 43) + " soon\n", `expired_ts "soon"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "signing.key")
			os.WriteFile(path, []byte(tc.key), 0o600)
			if tc.old != "" {
				os.WriteFile(filepath.Join(dir, OldKeysFile), []byte(tc.old), 0o600)
			}
			_, err := LoadOrGenerate(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, dir) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming the file and containing %q", msg, tc.want)
			}
		})
	}
}

func TestUnreadableKeyFile(t *testing.T) {
	// A directory where the key file should be cannot be read as a file, even as root.
	path := t.TempDir()
	_, err := LoadOrGenerate(path)
	if err == nil || !strings.Contains(err.Error(), "cannot read signing key "+path) || !strings.Contains(err.Error(), "make it readable") {
		t.Errorf("error = %v", err)
	}
}
