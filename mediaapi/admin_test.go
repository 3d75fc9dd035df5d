package mediaapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/storage"
)

func adminToken(t *testing.T, s *servertest.Server) string {
	hash, err := auth.HashPassword(servertest.TestPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().CreateAccount(t.Context(), "admin", hash, true); err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Login(t, "admin")
	return tok
}

func mediaID(mxc string) string { return mxc[strings.LastIndexByte(mxc, '/')+1:] }

func TestAdminQuarantineAndDelete(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	admin := adminToken(t, s)
	alice, aliceTok := s.RegisterUser(t, "alice")
	_, bobTok := s.RegisterUser(t, "bob")

	pic := upload(t, s, aliceTok, "image/png", "a.png", encodePNG(t, testImage()))
	thumb := upload(t, s, aliceTok, "image/jpeg", "t.jpg", encodeJPEG(t, testImage()))
	other := upload(t, s, bobTok, "text/plain", "b.txt", []byte("bob's file"))

	var room struct {
		RoomID string `json:"room_id"`
	}
	s.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceTok, map[string]any{}, &room)
	s.DoJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room.RoomID)+"/send/m.room.message/t1", aliceTok,
		map[string]any{"msgtype": "m.image", "body": "a.png", "url": pic, "info": map[string]any{"thumbnail_url": thumb}}, nil)
	roomPath := "/_synapse/admin/v1/room/" + url.PathEscape(room.RoomID) + "/media"

	// Admins only.
	if status, raw := s.Do(t, http.MethodGet, roomPath, aliceTok, nil); status != http.StatusForbidden {
		t.Errorf("non-admin: %d %s", status, raw)
	}
	var listed struct{ Local, Remote []string }
	s.DoJSON(t, http.MethodGet, roomPath, admin, nil, &listed)
	if len(listed.Local) != 2 || len(listed.Remote) != 0 {
		t.Fatalf("room media: %+v", listed)
	}

	var q struct {
		N int `json:"num_quarantined"`
	}
	s.DoJSON(t, http.MethodPost, roomPath+"/quarantine", admin, map[string]any{}, &q)
	if q.N != 2 {
		t.Errorf("quarantined %d of the room's media, want 2", q.N)
	}
	for _, mxc := range []string{pic, thumb} {
		if resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(mxc), bobTok); resp.StatusCode != http.StatusNotFound {
			t.Errorf("quarantined %s: %d %s", mxc, resp.StatusCode, body)
		}
	}
	s.DoJSON(t, http.MethodPost, "/_synapse/admin/v1/media/unquarantine/"+mxcPath(pic), admin, map[string]any{}, nil)
	if resp, _ := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(pic), bobTok); resp.StatusCode != http.StatusOK {
		t.Errorf("released media: %d", resp.StatusCode)
	}
	s.DoJSON(t, http.MethodPost, "/_synapse/admin/v1/media/quarantine/"+mxcPath(other), admin, map[string]any{}, nil)
	if resp, _ := get(t, s, "/_matrix/media/v3/download/"+mxcPath(other), ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("quarantined by ID: %d", resp.StatusCode)
	}
	s.DoJSON(t, http.MethodPost, "/_synapse/admin/v1/user/"+url.PathEscape(alice)+"/media/quarantine", admin, map[string]any{}, &q)
	if q.N != 1 { // pic was released; thumb still quarantined
		t.Errorf("quarantined %d of alice's media, want 1", q.N)
	}

	// Delete by ID: the row and (unused) file go.
	m, err := s.DB().GetMedia(t.Context(), s.Name, mediaID(other))
	if err != nil {
		t.Fatal(err)
	}
	var del struct {
		Deleted []string `json:"deleted_media"`
		Total   int      `json:"total"`
	}
	s.DoJSON(t, http.MethodDelete, "/_synapse/admin/v1/media/"+mxcPath(other), admin, nil, &del)
	if del.Total != 1 || del.Deleted[0] != mediaID(other) {
		t.Errorf("delete: %+v", del)
	}
	if _, err := s.Media().Store().Open(m.SHA256); err == nil {
		t.Error("the deleted media's file is still there")
	}
	if status, raw := s.Do(t, http.MethodDelete, "/_synapse/admin/v1/media/"+mxcPath(other), admin, nil); status != http.StatusNotFound {
		t.Errorf("deleting again: %d %s", status, raw)
	}
	// Delete by user, and by room.
	extra := upload(t, s, aliceTok, "text/plain", "", []byte("alice's note"))
	s.DoJSON(t, http.MethodDelete, "/_synapse/admin/v1/users/"+url.PathEscape(alice)+"/media", admin, nil, &del)
	if del.Total != 3 {
		t.Errorf("deleted %d of alice's media, want 3: %+v", del.Total, del)
	}
	if resp, _ := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(extra), bobTok); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted by user: %d", resp.StatusCode)
	}
	again := upload(t, s, aliceTok, "text/plain", "", []byte("in the room"))
	s.DoJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room.RoomID)+"/send/m.room.message/t2", aliceTok,
		map[string]any{"msgtype": "m.file", "body": "f", "url": again}, nil)
	s.DoJSON(t, http.MethodDelete, roomPath, admin, nil, &del)
	if del.Total != 1 || del.Deleted[0] != mediaID(again) {
		t.Errorf("delete by room: %+v", del)
	}
}

// Cached remote media older than the given time is purged.
func TestAdminPurgeRemoteCache(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	admin := adminToken(t, s)
	bw, err := s.Media().Store().Create()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(bw, "cached remote bytes")
	sum, size, err := bw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour).UnixMilli()
	for _, id := range []string{"oldRemote", "newRemote"} {
		ts := old
		if id == "newRemote" {
			ts = time.Now().UnixMilli()
		}
		if err := s.DB().ReplaceRemoteMedia(t.Context(), &storage.Media{Origin: "remote.example", MediaID: id, SHA256: sum,
			Size: size, ContentType: "text/plain", CreatedTS: ts, UploadedTS: ts}); err != nil {
			t.Fatal(err)
		}
	}
	var out struct {
		Deleted int `json:"deleted"`
	}
	s.DoJSON(t, http.MethodPost, fmt.Sprintf("/_synapse/admin/v1/purge_media_cache?before_ts=%d", time.Now().Add(-24*time.Hour).UnixMilli()), admin, map[string]any{}, &out)
	if out.Deleted != 1 {
		t.Errorf("purged %d, want 1", out.Deleted)
	}
	if _, err := s.DB().GetMedia(t.Context(), "remote.example", "oldRemote"); err == nil {
		t.Error("old remote media still cached")
	}
	if _, err := s.DB().GetMedia(t.Context(), "remote.example", "newRemote"); err != nil {
		t.Errorf("new remote media purged: %v", err)
	}
	// The file is still used by the newer item.
	if b, err := s.Media().Store().Open(sum); err != nil {
		t.Errorf("shared file deleted: %v", err)
	} else {
		b.Close()
	}
	// Quarantining remote media not cached yet keeps it from being
	// fetched at all (remote.example does not exist: a fetch would fail
	// with 502, not 404).
	s.DoJSON(t, http.MethodPost, "/_synapse/admin/v1/media/quarantine/remote.example/neverFetched", admin, map[string]any{}, nil)
	if resp, body := get(t, s, "/_matrix/client/v1/media/download/remote.example/neverFetched", admin); resp.StatusCode != http.StatusNotFound || errcode(body) != "M_NOT_FOUND" {
		t.Errorf("quarantined remote media: %d %s", resp.StatusCode, body)
	}
	if status, raw := s.Do(t, http.MethodPost, "/_synapse/admin/v1/purge_media_cache", admin, map[string]any{}); status != http.StatusBadRequest {
		t.Errorf("purge without before_ts: %d %s", status, raw)
	}
}
