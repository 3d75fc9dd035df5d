package relations

import (
	"math/rand/v2"
	"testing"

	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// TestRangesAgreeWithTheRule: for random histories, a message event at any
// position is in Ranges exactly when roomserver.EventVisibility allows it.
func TestRangesAgreeWithTheRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hvValues := []string{"shared", "joined", "invited", "world_readable"}
	memValues := []string{"join", "leave", "invite", "ban", "knock"}
	for round := range 2000 {
		const upto = 60
		var hv, mem []StateChange
		for pos := int64(1); pos <= upto+5; pos++ {
			switch rng.IntN(8) {
			case 0:
				hv = append(hv, StateChange{pos, hvValues[rng.IntN(len(hvValues))]})
			case 1:
				mem = append(mem, StateChange{pos, memValues[rng.IntN(len(memValues))]})
			}
		}
		joinedNow := rng.IntN(2) == 0
		ranges := Ranges(hv, mem, joinedNow, upto)
		for i := 1; i < len(ranges); i++ {
			if ranges[i].After <= ranges[i-1].Upto {
				t.Fatalf("round %d: ranges overlap or touch: %v", round, ranges)
			}
		}
		for pos := int64(-2); pos <= upto+5; pos++ {
			var st roomserver.VisibilityState
			for _, c := range hv {
				if c.Pos < pos {
					st.HistoryVisibility = c.Value
				}
			}
			for _, c := range mem {
				if c.Pos < pos {
					st.Membership = c.Value
				}
			}
			want := pos <= upto && roomserver.EventVisibility(st, nil).Allows(joinedNow)
			if got := inRanges(ranges, pos); got != want {
				t.Fatalf("round %d: position %d: in ranges %v, rule says %v (hv %v, memberships %v, joined now %v)",
					round, pos, got, want, hv, mem, joinedNow)
			}
		}
	}
}

func inRanges(ranges []storage.PosRange, pos int64) bool {
	for _, r := range ranges {
		if pos > r.After && pos <= r.Upto {
			return true
		}
	}
	return false
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       RelatesTo
		ok         bool
	}{
		{"thread", `{"type":"m.room.message","content":{"m.relates_to":{"rel_type":"m.thread","event_id":"$a"}}}`,
			RelatesTo{RelType: "m.thread", EventID: "$a"}, true},
		{"annotation", `{"type":"m.reaction","content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$a","key":"👍"}}}`,
			RelatesTo{RelType: "m.annotation", EventID: "$a", Key: "👍"}, true},
		{"annotation without key", `{"type":"m.reaction","content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$a"}}}`,
			RelatesTo{}, false},
		{"edit", `{"type":"m.room.message","content":{"m.new_content":{},"m.relates_to":{"rel_type":"m.replace","event_id":"$a"}}}`,
			RelatesTo{RelType: "m.replace", EventID: "$a"}, true},
		{"edit without new content", `{"type":"m.room.message","content":{"m.relates_to":{"rel_type":"m.replace","event_id":"$a"}}}`,
			RelatesTo{}, false},
		{"encrypted edit", `{"type":"m.room.encrypted","content":{"m.relates_to":{"rel_type":"m.replace","event_id":"$a"}}}`,
			RelatesTo{RelType: "m.replace", EventID: "$a"}, true},
		{"rich reply", `{"type":"m.room.message","content":{"m.relates_to":{"m.in_reply_to":{"event_id":"$a"}}}}`,
			RelatesTo{}, false},
		{"not an event ID", `{"content":{"m.relates_to":{"rel_type":"m.reference","event_id":"a"}}}`, RelatesTo{}, false},
		{"rel_type not a string", `{"content":{"m.relates_to":{"rel_type":1,"event_id":"$a"}}}`, RelatesTo{}, false},
		{"no content", `{"type":"m.room.message"}`, RelatesTo{}, false},
	} {
		got, ok := Parse([]byte(tc.json))
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParse: any bytes parse without panicking, and what is accepted has
// an event ID and a rel_type within the identifier limits.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"type":"m.reaction","content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$a","key":"x"}}}`))
	f.Add([]byte(`{"content":{"m.relates_to":{"rel_type":"m.replace","event_id":"$a"},"m.new_content":{}}}`))
	f.Add([]byte(`{"content":{"m.relates_to":[]}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := Parse(data)
		if !ok {
			return
		}
		if len(r.EventID) < 2 || r.EventID[0] != '$' || len(r.EventID) > 255 || r.RelType == "" || len(r.RelType) > 255 {
			t.Fatalf("accepted %+v from %q", r, data)
		}
	})
}
