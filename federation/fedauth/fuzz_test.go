package fedauth

import (
	"strings"
	"testing"
)

// FuzzParseXMatrix feeds arbitrary header values to the parser: it must
// never panic, a parsed header has every required parameter, and what
// String writes for it parses back to the same header.
func FuzzParseXMatrix(f *testing.F) {
	for _, seed := range []string{
		`X-Matrix origin="origin.example.com",destination="dest.example.com",key="ed25519:key1",sig="ABCDEF"`,
		`X-Matrix origin=origin.example.com,key=ed25519:key1,sig=ABC+/def=`,
		"x-matrix  ORIGIN = \"a\\\"b\" ,\t,key=k,sig=s,extra=\"x, y\"",
		`X-Matrix origin=[::1]:8448,key=k,sig=s`,
		`Bearer abc`,
		`X-Matrix origin="unterminated`,
		`X-Matrix origin=a,origin=b,key=k,sig=s`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		h, err := ParseXMatrix(value)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error message of %d bytes: %.100q...", len(err.Error()), err.Error())
			}
			return
		}
		if h.Origin == "" || h.Key == "" || h.Sig == "" {
			t.Fatalf("ParseXMatrix(%q) = %+v without a required parameter", value, h)
		}
		if !strings.HasPrefix(strings.ToLower(value), "x-matrix") {
			t.Fatalf("ParseXMatrix(%q) accepted another scheme", value)
		}
		again, err := ParseXMatrix(h.String())
		if err != nil || again != h {
			t.Fatalf("round trip of %+v through %q: %+v, %v", h, h.String(), again, err)
		}
	})
}
