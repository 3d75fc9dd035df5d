package auth

import (
	"strings"
	"testing"
)

// Room version 12 (MSC4289): the create event's sender and its
// additional_creators have infinite power and cannot be listed in users.
func TestPrivilegedCreators(t *testing.T) {
	r := newRoom(t, 12, `"additional_creators":["`+bob+`"]`, false)
	r.set(bob, membershipJoin)
	r.set(carol, membershipJoin)

	// Without a power levels event, creators can do anything, others nothing.
	if err := r.check(r.event(bob, "m.room.name", sp(""), `{"name":"x"}`)); err != nil {
		t.Fatalf("additional creator sending state: %v", err)
	}
	if err := r.check(r.event(carol, "m.room.name", sp(""), `{"name":"x"}`)); err == nil {
		t.Fatal("non-creator sending state without power levels allowed")
	}

	// The creators may not appear in users, whichever creator it is.
	for _, u := range []string{alice, bob} {
		err := r.check(plBy(r, alice, `{"users":{"`+u+`":100}}`))
		if err == nil || !strings.Contains(err.Error(), "lists the room creator "+u) {
			t.Fatalf("listing %s: %v", u, err)
		}
	}
	r.mustAllow(plBy(r, alice, `{"users":{"`+carol+`":9007199254740991},"ban":9007199254740991,"kick":9007199254740991}`))

	// Nobody outranks a creator: carol at the highest level cannot kick or
	// ban bob, and creators cannot kick each other.
	if err := r.check(r.member(carol, bob, ban)); err == nil {
		t.Fatal("carol banned a creator")
	}
	if err := r.check(r.member(alice, bob, leave)); err == nil {
		t.Fatal("a creator kicked another creator")
	}
	if err := r.check(r.member(bob, carol, ban)); err != nil {
		t.Fatalf("creator banning the top user: %v", err)
	}
	// A creator changes levels above anyone's.
	if err := r.check(plBy(r, bob, `{"users":{"`+carol+`":0},"ban":0}`)); err != nil {
		t.Fatalf("creator demoting: %v", err)
	}
	// carol cannot change the creators' standing through the users map.
	if err := r.check(plBy(r, carol, `{"users":{"`+carol+`":9007199254740991},"ban":9007199254740991,"kick":9007199254740991,"events":{"x":1}}`)); err != nil {
		t.Fatalf("top user adding an event level: %v", err)
	}

	levels, err := PowerLevelsFromState(r.create, r.state[plKey])
	if err != nil {
		t.Fatal(err)
	}
	if levels.UserLevel(alice) != CreatorLevel || levels.UserLevel(bob) != CreatorLevel || !levels.IsCreator(bob) {
		t.Fatalf("creators: %d %d", levels.UserLevel(alice), levels.UserLevel(bob))
	}
	if levels.IsCreator(carol) || levels.UserLevel(carol) != 9007199254740991 {
		t.Fatalf("carol: %d", levels.UserLevel(carol))
	}
}

// additional_creators has no meaning before version 12.
func TestAdditionalCreatorsBeforeV12(t *testing.T) {
	r := newRoom(t, 11, `"additional_creators":["`+bob+`"]`, false)
	r.set(bob, membershipJoin)
	if err := r.check(r.event(bob, "m.room.name", sp(""), `{"name":"x"}`)); err == nil {
		t.Fatal("additional creator privileged in v11")
	}
	if err := r.check(plBy(r, alice, `{"users":{"`+alice+`":100,"`+bob+`":100}}`)); err != nil {
		t.Fatal(err)
	}
}
