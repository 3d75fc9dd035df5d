package auth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// benchRoom is a version 11 room whose power levels list 1,000 users, and a
// message from one of them.
func benchRoom(b *testing.B) (*room, *pdu.Event) {
	r := newRoom(b, 11, "", false)
	users := make([]string, 0, 1000)
	for i := 0; i < 1000; i++ {
		users = append(users, fmt.Sprintf(`"@user%d:b.test":%d`, i, i%100))
	}
	r.set(bob, membershipJoin)
	r.powerLevels(r.adminPL(`"events":{"m.room.name":50,"m.room.topic":50}`, strings.Join(users, ",")))
	return r, message(r, bob)
}

// BenchmarkCheck: one Check per event, parsing the power levels each time.
func BenchmarkCheck(b *testing.B) {
	r, msg := benchRoom(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(msg, r.lookup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChecker: the same with a reused Checker, as state resolution does.
func BenchmarkChecker(b *testing.B) {
	r, msg := benchRoom(b)
	var c Checker
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Check(msg, r.lookup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckerMember: a kick, reading three member events and the levels.
func BenchmarkCheckerMember(b *testing.B) {
	r, _ := benchRoom(b)
	kick := r.member(alice, bob, leave)
	var c Checker
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Check(kick, r.lookup); err != nil {
			b.Fatal(err)
		}
	}
}
