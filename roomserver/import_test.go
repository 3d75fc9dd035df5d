package roomserver

import (
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func TestImportCreate(t *testing.T) {
	remote := newFakeRemote(t)
	forEachDSN(t, func(t *testing.T, dsn string) {
		e := newEnvWithRemote(t, dsn, remote)
		ctx := ctxT(t)
		ver, _ := pdu.GetRoomVersion("11")
		roomID, u := "!imported:"+remoteServer, "@u:"+remoteServer
		empty := ""
		create := remote.build(t, ver, roomID, u, "m.room.create", &empty, map[string]any{"room_version": "11"}, nil, nil)
		join := remote.build(t, ver, roomID, u, "m.room.member", &u, map[string]any{"membership": "join"}, []*pdu.Event{create}, []*pdu.Event{create})

		var bad *BadRequestError
		if err := e.rs.ImportCreate(ctx, join); !errors.As(err, &bad) {
			t.Fatalf("importing a join as the create event: %v", err)
		}
		forged := newFakeRemote(t).build(t, ver, roomID, u, "m.room.create", &empty, map[string]any{"room_version": "11"}, nil, nil)
		if err := e.rs.ImportCreate(ctx, forged); !errors.As(err, &bad) {
			t.Fatalf("create event signed with an unknown key: %v", err)
		}
		if _, err := e.rs.RoomVersion(ctx, roomID); !errors.Is(err, ErrRoomNotFound) {
			t.Fatalf("a refused import left the room: %v", err)
		}

		if err := e.rs.ImportCreate(ctx, create); err != nil {
			t.Fatal(err)
		}
		if err := e.rs.ImportCreate(ctx, create); !errors.Is(err, ErrRoomExists) {
			t.Fatalf("second import: %v", err)
		}
		res, err := e.rs.InputReceived(ctx, roomID, []*pdu.Event{join})
		if err != nil || len(res) != 1 || res[0].Output == nil {
			t.Fatalf("the creator's join after the import: %+v, %v", res, err)
		}
		if m, err := e.rs.Membership(ctx, roomID, u); err != nil || m != "join" {
			t.Fatalf("membership %q, %v", m, err)
		}
	})
}
