package mediaapi_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"testing"

	_ "golang.org/x/image/webp"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// testImage is a 640×400 gradient with a little transparency in one
// corner.
func testImage() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 640, 400))
	for y := 0; y < 400; y++ {
		for x := 0; x < 640; x++ {
			a := uint8(255)
			if x < 20 && y < 20 {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / 640), uint8(y * 255 / 400), uint8(x + y), a})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// encodeGIF encodes frames of the test image, each shifted, as a GIF.
func encodeGIF(t testing.TB, frames int) []byte {
	src := testImage()
	g := &gif.GIF{}
	for i := range frames {
		pm := image.NewPaletted(src.Bounds(), palette.Plan9)
		for y := 0; y < 400; y++ {
			for x := 0; x < 640; x++ {
				pm.Set(x, y, src.At((x+i*40)%640, y))
			}
		}
		g.Image = append(g.Image, pm)
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Thumbnails of each format at each configured size and method, and at
// a size between them, have the dimensions the spec asks for.
func TestThumbnailsOfEachFormat(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	formats := []struct {
		name, ctype string
		data        []byte
		thumbType   string // content type of a scaled-down thumbnail
	}{
		{"png", "image/png", encodePNG(t, testImage()), "image/png"},
		{"jpeg", "image/jpeg", encodeJPEG(t, testImage()), "image/jpeg"},
		{"gif", "image/gif", encodeGIF(t, 1), "image/png"},
		{"webp-lossy", "image/webp", readFile(t, "testdata/gradient.lossy.webp"), "image/jpeg"},
		{"webp-lossless", "image/webp", readFile(t, "testdata/gradient.lossless.webp"), "image/png"},
	}
	sizes := []struct {
		w, h          int
		method        string
		wantW, wantH  int
		original      bool // the original content is the answer
		animatedParam string
	}{
		{32, 32, "crop", 32, 32, false, ""},
		{96, 96, "crop", 96, 96, false, ""},
		{50, 40, "crop", 96, 96, false, ""}, // the next configured crop size up
		{320, 240, "scale", 320, 200, false, ""},
		{300, 100, "scale", 320, 200, false, "false"},
		{640, 480, "scale", 640, 400, true, ""}, // no larger than the box: the original
		{800, 600, "scale", 640, 400, true, ""},
	}
	for _, f := range formats {
		mxc := upload(t, s, tok, f.ctype, "pic."+f.name, f.data)
		for _, sz := range sizes {
			for _, family := range []string{"/_matrix/client/v1/media/thumbnail/", "/_matrix/media/v3/thumbnail/"} {
				path := fmt.Sprintf("%s%s?width=%d&height=%d&method=%s", family, mxcPath(mxc), sz.w, sz.h, sz.method)
				if sz.animatedParam != "" {
					path += "&animated=" + sz.animatedParam
				}
				resp, body := get(t, s, path, tok)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: %d %s", f.name, path, resp.StatusCode, body)
				}
				checkSafeHeaders(t, resp)
				cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("%s %s: thumbnail does not decode: %v", f.name, path, err)
				}
				if cfg.Width != sz.wantW || cfg.Height != sz.wantH {
					t.Errorf("%s %dx%d %s: thumbnail is %dx%d, want %dx%d", f.name, sz.w, sz.h, sz.method, cfg.Width, cfg.Height, sz.wantW, sz.wantH)
				}
				ct := resp.Header.Get("Content-Type")
				switch {
				case sz.original && f.name != "gif":
					if ct != f.ctype {
						t.Errorf("%s %s: Content-Type %q, want the original's %q", f.name, path, ct, f.ctype)
					}
				case ct != f.thumbType || "image/"+format != ct:
					t.Errorf("%s %s: Content-Type %q (decodes as %s), want %s", f.name, path, ct, format, f.thumbType)
				}
				if cd := resp.Header.Get("Content-Disposition"); len(cd) < 6 || cd[:6] != "inline" {
					t.Errorf("%s %s: Content-Disposition %q, want inline", f.name, path, cd)
				}
			}
		}
	}
}

// An animated GIF gives an animated thumbnail with animated=true, and a
// still one otherwise.
func TestAnimatedGIFThumbnail(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	mxc := upload(t, s, tok, "image/gif", "anim.gif", encodeGIF(t, 3))
	for _, tc := range []struct {
		query  string
		frames int
		ctype  string
	}{
		{"width=320&height=240&method=scale&animated=true", 3, "image/gif"},
		{"width=96&height=96&method=crop&animated=true", 3, "image/gif"},
		{"width=320&height=240&method=scale", 1, "image/png"},
		{"width=800&height=600&method=scale&animated=false", 1, "image/png"},
	} {
		resp, body := get(t, s, "/_matrix/client/v1/media/thumbnail/"+mxcPath(mxc)+"?"+tc.query, tok)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.ctype {
			t.Fatalf("%s: %d %s %s", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"), body[:min(len(body), 200)])
		}
		frames := 1
		if tc.ctype == "image/gif" {
			g, err := gif.DecodeAll(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			frames = len(g.Image)
			if g.Config.Width > 320 || g.Config.Height > 240 {
				t.Errorf("%s: animated thumbnail %dx%d", tc.query, g.Config.Width, g.Config.Height)
			}
		}
		if frames != tc.frames {
			t.Errorf("%s: %d frames, want %d", tc.query, frames, tc.frames)
		}
	}
}

// bombPNG is a PNG whose header claims 50000×50000 pixels (2.5 gigapixels,
// 10 GB decoded) followed by a little compressed data.
func bombPNG() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 50000)
	binary.BigEndian.PutUint32(ihdr[4:], 50000)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	// A zlib stream of zeros: a real bomb would inflate to 10 GB.
	chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0xa3, 0x60, 0x14, 0x0c, 0x77, 0x00, 0x00})
	chunk("IEND", nil)
	return b.Bytes()
}

// Files that could harm clients or the server are served safely or
// refused.
func TestMaliciousFiles(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")

	html := upload(t, s, tok, "text/html", "page.html", []byte(`<html><script>alert(document.cookie)</script></html>`))
	svg := upload(t, s, tok, "image/svg+xml", "pic.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	for _, mxc := range []string{html, svg} {
		for _, p := range []string{"/_matrix/client/v1/media/download/" + mxcPath(mxc), "/_matrix/media/v3/download/" + mxcPath(mxc)} {
			resp, _ := get(t, s, p, tok)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
			checkSafeHeaders(t, resp)
			if cd := resp.Header.Get("Content-Disposition"); len(cd) < 10 || cd[:10] != "attachment" {
				t.Errorf("%s: Content-Disposition %q, want attachment", p, cd)
			}
		}
		// Not an image this server thumbnails.
		resp, body := get(t, s, "/_matrix/client/v1/media/thumbnail/"+mxcPath(mxc)+"?width=32&height=32", tok)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("thumbnail of %s: %d %s", mxc, resp.StatusCode, body)
		}
	}
	// A text/html upload labelled image/png stays image/png (inline is
	// then harmless: browsers render it as a broken image, never HTML).
	fake := upload(t, s, tok, "image/png", "", []byte(`<html><script>alert(1)</script></html>`))
	resp, _ := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(fake), tok)
	if resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("fake PNG: %q %q", resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"))
	}
	resp, body := get(t, s, "/_matrix/client/v1/media/thumbnail/"+mxcPath(fake)+"?width=32&height=32", tok)
	if resp.StatusCode != http.StatusBadRequest || errcode(body) != "M_UNKNOWN" {
		t.Errorf("thumbnail of a fake PNG: %d %s", resp.StatusCode, body)
	}

	bomb := upload(t, s, tok, "image/png", "bomb.png", bombPNG())
	resp, body = get(t, s, "/_matrix/client/v1/media/thumbnail/"+mxcPath(bomb)+"?width=320&height=240&method=scale", tok)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errcode(body) != "M_TOO_LARGE" {
		t.Errorf("thumbnail of a decompression bomb: %d %s", resp.StatusCode, body)
	}

	full := encodeJPEG(t, testImage())
	truncated := upload(t, s, tok, "image/jpeg", "cut.jpg", full[:len(full)/2])
	for _, q := range []string{"width=32&height=32&method=crop", "width=320&height=240&method=scale"} {
		resp, body := get(t, s, "/_matrix/client/v1/media/thumbnail/"+mxcPath(truncated)+"?"+q, tok)
		if resp.StatusCode >= 500 {
			t.Errorf("thumbnail of a truncated JPEG: %d %s", resp.StatusCode, body)
		}
	}
	// The truncated file itself still downloads.
	if resp, body := get(t, s, "/_matrix/client/v1/media/download/"+mxcPath(truncated), tok); resp.StatusCode != http.StatusOK || len(body) != len(full)/2 {
		t.Errorf("download of a truncated JPEG: %d, %d bytes", resp.StatusCode, len(body))
	}

	// Bad thumbnail parameters.
	for _, q := range []string{"", "width=0&height=10", "width=10&height=x", "width=10&height=10&method=zoom", "width=10&height=10&animated=maybe"} {
		resp, body := get(t, s, "/_matrix/client/v1/media/thumbnail/"+mxcPath(bomb)+"?"+q, tok)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("thumbnail with %q: %d %s", q, resp.StatusCode, body)
		}
	}
}
