package syncapi

import "testing"

func TestSearchTokenRoundTrip(t *testing.T) {
	for _, tok := range []searchToken{
		{Order: "rank", Offset: 42},
		{Order: "recent", Pos: 7, GroupKey: "room_id", GroupValue: "!r:example.org"},
		{Order: "recent", Pos: -12}, // backfilled history
		{Order: "rank", Offset: 3, GroupKey: "sender", GroupValue: "@u:example.org"},
	} {
		got, err := parseSearchToken(tok.String())
		if err != nil || got != tok {
			t.Errorf("%+v: round trip gave %+v, %v", tok, got, err)
		}
	}
	for _, bad := range []string{"", "nonsense", "e30", searchToken{Order: "best"}.String(),
		searchToken{Order: "rank", Offset: -2}.String(), searchToken{Order: "rank", GroupKey: "type", GroupValue: "x"}.String(),
		searchToken{Order: "rank", GroupKey: "sender"}.String()} {
		if _, err := parseSearchToken(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzSearchToken: any string either fails with a Matrix error or parses
// into a token that encodes back to one parsing the same.
func FuzzSearchToken(f *testing.F) {
	f.Add(searchToken{Order: "rank", Offset: 3}.String())
	f.Add(searchToken{Order: "recent", Pos: 9, GroupKey: "room_id", GroupValue: "!a:b"}.String())
	f.Add("eyJvIjoicmFuayJ9")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseSearchToken(s)
		if err != nil {
			return
		}
		again, err := parseSearchToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q: %+v re-encoded parses as %+v, %v", s, tok, again, err)
		}
	})
}
