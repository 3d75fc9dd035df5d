package roomserver

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// atTSRecorder is a ServerKeys that records the time it is asked about.
type atTSRecorder struct {
	*fakeRemote
	asked []int64
}

func (r *atTSRecorder) VerifyKey(ctx context.Context, server, keyID string, atTS int64) (ed25519.PublicKey, error) {
	r.asked = append(r.asked, atTS)
	return r.fakeRemote.VerifyKey(ctx, server, keyID, atTS)
}

// TestKeyValidityByRoomVersion checks which time the signature check asks
// the key store about: the event's origin_server_ts from room version 5,
// where keys must be valid when the event was sent, and 0 (any time)
// before it, where valid_until_ts is ignored.
func TestKeyValidityByRoomVersion(t *testing.T) {
	remote := newFakeRemote(t)
	for _, c := range []struct {
		version string
		useTS   bool
	}{{"1", false}, {"4", false}, {"5", true}, {"11", true}} {
		ver, err := pdu.GetRoomVersion(c.version)
		if err != nil {
			t.Fatal(err)
		}
		rec := &atTSRecorder{fakeRemote: remote}
		rs := &Roomserver{serverName: testServer, serverKeys: rec}
		roomID := "!room:" + remoteServer
		ev := remote.build(t, ver, roomID, "@u:"+remoteServer, "m.room.message", nil, map[string]any{"body": "hi"}, nil, nil)
		if _, err := rs.checkSignatures(context.Background(), ev); err != nil {
			t.Fatalf("v%s: %v", c.version, err)
		}
		want := int64(0)
		if c.useTS {
			want = ev.OriginServerTS()
		}
		if len(rec.asked) != 1 || rec.asked[0] != want {
			t.Fatalf("v%s: asked for keys valid at %v, want [%d]", c.version, rec.asked, want)
		}
	}
}
