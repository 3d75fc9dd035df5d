package pdu

import (
	"strings"
	"testing"
)

// benchEvent is a typical federated message in a v10 room.
func benchEvent(b *testing.B) ([]byte, *RoomVersion) {
	ver, _ := GetRoomVersion("10")
	p := ProtoEvent{Type: "m.room.message", Sender: "@alice:example.org", RoomID: "!abcdefghijklmnop:example.org",
		Content:    []byte(`{"body":"` + strings.Repeat("Hello, world! ", 20) + `","msgtype":"m.text","m.relates_to":{"m.in_reply_to":{"event_id":"$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"}}}`),
		PrevEvents: []string{"$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"},
		AuthEvents: []string{"$aaaa-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", "$bbbb-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", "$cccc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"},
		Depth:      12345, OriginServerTS: 1700000000000}
	ev, err := p.Build(ver, "example.org", "ed25519:1", specKey(b))
	if err != nil {
		b.Fatal(err)
	}
	// As received: pretty-printed, keys unsorted, with unsigned.
	raw := strings.Replace(string(ev.JSON()), `{"auth_events"`, `{"unsigned": {"age": 1234}, "auth_events"`, 1)
	return []byte(raw), ver
}

func BenchmarkParseEvent(b *testing.B) {
	raw, ver := benchEvent(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(raw, ver); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonicalJSON(b *testing.B) {
	raw, _ := benchEvent(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CanonicalJSONStrict(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckContentHash(b *testing.B) {
	raw, ver := benchEvent(b)
	ev, _ := ParseEvent(raw, ver)
	b.ReportAllocs()
	for b.Loop() {
		if err := ev.CheckContentHash(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	raw, ver := benchEvent(b)
	ev, _ := ParseEvent(raw, ver)
	key := specKey(b)
	p := ProtoEvent{Type: ev.Type(), Sender: ev.Sender(), RoomID: ev.RoomID(), Content: ev.Content(),
		PrevEvents: ev.PrevEventIDs(), AuthEvents: ev.AuthEventIDs(), Depth: ev.Depth(), OriginServerTS: ev.OriginServerTS()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Build(ver, "example.org", "ed25519:1", key); err != nil {
			b.Fatal(err)
		}
	}
}
