package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestMediaRows(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		sum := "aa00000000000000000000000000000000000000000000000000000000000000"
		up := &storage.Media{Origin: "hs", MediaID: "up", SHA256: sum, Size: 5, ContentType: "text/plain",
			UserID: "@a:hs", CreatedTS: 1, UploadedTS: 1}
		if err := db.CreateMedia(ctx, up); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateMedia(ctx, up); !errors.Is(err, storage.ErrMediaExists) {
			t.Errorf("second create: %v", err)
		}
		pending := &storage.Media{Origin: "hs", MediaID: "p", UserID: "@a:hs", CreatedTS: 1, ExpiresTS: 100}
		if err := db.CreateMedia(ctx, pending); err != nil {
			t.Fatal(err)
		}
		if n, err := db.CountPendingUploads(ctx, "@a:hs", 50); err != nil || n != 1 {
			t.Errorf("pending at 50: %d %v", n, err)
		}
		if n, _ := db.CountPendingUploads(ctx, "@a:hs", 100); n != 0 {
			t.Errorf("pending at 100 (expired): %d", n)
		}
		got, err := db.GetMedia(ctx, "hs", "p")
		if err != nil || !got.Pending() {
			t.Fatalf("pending row: %+v %v", got, err)
		}
		pending.SHA256, pending.Size, pending.ContentType, pending.UploadedTS = sum, 5, "text/plain", 2
		if err := db.CompleteMediaUpload(ctx, pending); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteMediaUpload(ctx, pending); !errors.Is(err, storage.ErrMediaExists) {
			t.Errorf("second upload: %v", err)
		}
		if used, err := db.MediaUsage(ctx, "@a:hs"); err != nil || used != 10 {
			t.Errorf("usage %d %v", used, err)
		}
		th := &storage.MediaThumbnail{Origin: "hs", MediaID: "up", Width: 32, Height: 32, Method: "crop",
			SHA256: "bb00000000000000000000000000000000000000000000000000000000000000", Size: 3, ContentType: "image/png"}
		if err := db.AddMediaThumbnail(ctx, th); err != nil {
			t.Fatal(err)
		}
		if got, err := db.GetMediaThumbnail(ctx, "hs", "up", 32, 32, "crop", false); err != nil || got.SHA256 != th.SHA256 {
			t.Errorf("thumbnail: %+v %v", got, err)
		}
		blobs, err := db.DeleteMedia(ctx, "hs", "up")
		if err != nil || len(blobs) != 2 {
			t.Fatalf("delete: %v %v", blobs, err)
		}
		// The content is still used by "p"; the thumbnail's is not.
		if used, _ := db.MediaBlobInUse(ctx, sum); !used {
			t.Error("shared blob reported unused")
		}
		if used, _ := db.MediaBlobInUse(ctx, th.SHA256); used {
			t.Error("thumbnail blob reported used")
		}
		if _, err := db.DeleteMedia(ctx, "hs", "up"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("delete again: %v", err)
		}
		if n, err := db.QuarantineUserMedia(ctx, "@a:hs"); err != nil || n != 1 {
			t.Errorf("quarantine user: %d %v", n, err)
		}
		if err := db.PutURLPreview(ctx, "https://x", `{"og:title":"x"}`, 1, 10); err != nil {
			t.Fatal(err)
		}
		if js, ok, err := db.GetURLPreview(ctx, "https://x", 5); err != nil || !ok || js != `{"og:title":"x"}` {
			t.Errorf("preview: %q %v %v", js, ok, err)
		}
		if _, ok, _ := db.GetURLPreview(ctx, "https://x", 10); ok {
			t.Error("expired preview served")
		}
		if _, err := db.RoomMedia(ctx, "!nope:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("media of an unknown room: %v", err)
		}
	})
}
