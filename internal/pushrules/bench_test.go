package pushrules

import (
	"fmt"
	"testing"
)

// One message evaluated for every member of a room of 10,000 local
// members: NewEvent once, then Evaluate per member, as the notifier does.
// "defaults": everyone on the server defaults; "mixed": one member in ten
// has rules of their own (a keyword, a muted room, a sender rule, a
// contains_display_name rule for one in a hundred), each compiled on its
// own.
func BenchmarkEvaluate10000Members(b *testing.B) {
	const members = 10000
	event := []byte(`{"type":"m.room.message","room_id":"!big:example.org","sender":"@sender:example.org",` +
		`"origin_server_ts":1700000000000,"content":{"msgtype":"m.text","body":"Lunch is ready in the kitchen, come and get it",` +
		`"m.mentions":{"user_ids":["@user42:example.org"]}}}`)
	for _, mix := range []string{"defaults", "mixed"} {
		b.Run(mix, func(b *testing.B) {
			cp := NewCompiler()
			users := make([]string, members)
			compiled := make([]*Compiled, members)
			for i := range users {
				users[i] = fmt.Sprintf("@user%d:example.org", i)
				rs := Defaults(users[i])
				if mix == "mixed" && i%10 == 0 {
					_ = rs.Put(Content, "kw", &NewRule{Pattern: ptr(fmt.Sprintf("word%d", i)), Actions: []Action{Notify(), SetTweak("highlight", nil)}}, "", "")
					_ = rs.Put(Room, fmt.Sprintf("!muted%d:example.org", i), &NewRule{Actions: []Action{}}, "", "")
					_ = rs.Put(Sender, fmt.Sprintf("@friend%d:example.org", i), &NewRule{Actions: []Action{Notify()}}, "", "")
					if i%100 == 0 {
						_ = rs.Put(Override, "name", &NewRule{Conditions: []Condition{{Kind: CondContainsDisplayName}},
							Actions: []Action{Notify(), SetTweak("highlight", nil)}}, "", "")
					}
				}
				compiled[i] = cp.Compile(rs, users[i])
			}
			room := &RoomContext{MemberCount: members, SenderLevel: 0,
				DisplayName: func(u string) string { return "User " + u[5:9] }}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ev, err := NewEvent(event)
				if err != nil {
					b.Fatal(err)
				}
				notified, highlighted := 0, 0
				for i, u := range users {
					if r := compiled[i].Evaluate(ev, u, room); r != nil && r.Notify {
						notified++
						if r.Highlight {
							highlighted++
						}
					}
				}
				if notified != members || highlighted != 1 {
					b.Fatalf("notified %d, highlighted %d", notified, highlighted)
				}
			}
		})
	}
}
