package mediaapi

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/config"
)

func TestOpenGraph(t *testing.T) {
	base, _ := url.Parse("https://example.org/blog/post")
	for _, tc := range []struct {
		name, page string
		want       map[string]string
	}{
		{"og tags", `<html><head><meta property="og:title" content="T"><meta property="OG:Description" content="D">
			<meta property="og:image" content="../img/a.png"></head></html>`,
			map[string]string{"og:title": "T", "og:description": "D", "og:image": "https://example.org/img/a.png"}},
		{"fallbacks", `<title>Hello &amp; welcome</title><meta name="description" content="about">`,
			map[string]string{"og:title": "Hello & welcome", "og:description": "about"}},
		{"og wins over title", `<title>x</title><meta property="og:title" content="y">`, map[string]string{"og:title": "y"}},
		{"name= og", `<meta name="og:site_name" content="Site">`, map[string]string{"og:site_name": "Site"}},
		{"bad image scheme", `<meta property="og:image" content="javascript:alert(1)">`, map[string]string{}},
		{"secure_url", `<meta property="og:image:secure_url" content="https://cdn.example/i.jpg">`,
			map[string]string{"og:image:secure_url": "https://cdn.example/i.jpg", "og:image": "https://cdn.example/i.jpg"}},
		{"first title only", `<title>a</title><body><title>b</title></body>`, map[string]string{"og:title": "a"}},
		{"empty", ``, map[string]string{}},
		{"garbage", "\x00\xff<<<>>>", map[string]string{}},
	} {
		got := openGraph([]byte(tc.page), base)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got[k], v)
			}
		}
	}
	long := "<title>" + strings.Repeat("é", 5000) + "</title>"
	if got := []rune(openGraph([]byte(long), base)["og:title"]); len(got) != maxOGValueRunes {
		t.Errorf("long title: %d runes", len(got))
	}
}

// FuzzOpenGraph: any bytes parse without a panic into valid UTF-8 values
// of bounded length, and an og:image is always an absolute http(s) URL.
func FuzzOpenGraph(f *testing.F) {
	f.Add([]byte(`<html><head><meta property="og:title" content="T"><meta property="og:image" content="/a.png"><title>x</title></head></html>`))
	f.Add([]byte(`<meta property="og:image" content="//evil.example/x">`))
	f.Add([]byte(`<title><title></title>`))
	f.Add([]byte("<meta property=og:title content=\xff\xfe>"))
	base, _ := url.Parse("https://example.org/page")
	f.Fuzz(func(t *testing.T, page []byte) {
		og := openGraph(page, base)
		if len(og) > maxOGProperties+2 {
			t.Fatalf("%d properties", len(og))
		}
		for k, v := range og {
			if !strings.HasPrefix(k, "og:") || !isValidUTF8(v) || len([]rune(v)) > maxOGValueRunes {
				t.Fatalf("bad property %q = %q", k, v)
			}
		}
		if img, ok := og["og:image"]; ok {
			u, err := url.Parse(img)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				t.Fatalf("og:image %q", img)
			}
		}
	})
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }

func multipartAnswer(boundary, meta, partHeaders, body string) string {
	return "--" + boundary + "\r\nContent-Type: application/json\r\n\r\n" + meta + "\r\n--" + boundary + "\r\n" +
		partHeaders + "\r\n" + body + "\r\n--" + boundary + "--\r\n"
}

func TestParseFederationMultipart(t *testing.T) {
	ans := multipartAnswer("xyz", "{}", "Content-Type: image/png\r\nContent-Disposition: inline; filename*=utf-8''%C3%A9.png\r\n", "PNGDATA")
	fm, err := parseFederationMultipart("multipart/mixed; boundary=xyz", strings.NewReader(ans))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(fm.Body)
	if fm.ContentType != "image/png" || fm.FileName != "é.png" || string(body) != "PNGDATA" || fm.Location != "" {
		t.Errorf("%+v %q", fm, body)
	}
	ans = multipartAnswer("b", `{"k":1}`, "Location: https://cdn.example/x\r\n", "")
	if fm, err := parseFederationMultipart(`multipart/mixed; boundary="b"`, strings.NewReader(ans)); err != nil || fm.Location != "https://cdn.example/x" {
		t.Errorf("location: %+v %v", fm, err)
	}
	for _, tc := range []struct{ ct, body string }{
		{"application/json", "{}"},
		{"multipart/mixed", ans},
		{"multipart/mixed; boundary=b", "--b\r\nContent-Type: application/json\r\n\r\nnot json\r\n--b--"},
		{"multipart/mixed; boundary=b", "--b\r\n\r\n{}\r\n--b--\r\n"},
	} {
		if _, err := parseFederationMultipart(tc.ct, strings.NewReader(tc.body)); err == nil {
			t.Errorf("%q %q: no error", tc.ct, tc.body)
		}
	}
	// What we write, we read.
	var buf bytes.Buffer
	mw := newMultipartWriter(&buf)
	hdr := map[string][]string{"Content-Type": {"text/plain"}, "Content-Disposition": {`inline; filename="a.txt"`}}
	if err := mw.WriteHead(hdr); err != nil {
		t.Fatal(err)
	}
	mw.Write([]byte("hello\r\n--not the boundary"))
	mw.Close()
	fm, err = parseFederationMultipart(mw.ContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(fm.Body)
	if string(body) != "hello\r\n--not the boundary" || fm.FileName != "a.txt" {
		t.Errorf("round trip: %q %+v", body, fm)
	}
}

// FuzzParseFederationMultipart: any answer parses or fails without a
// panic, and never yields more bytes than it holds.
func FuzzParseFederationMultipart(f *testing.F) {
	f.Add("multipart/mixed; boundary=xyz", multipartAnswer("xyz", "{}", "Content-Type: image/png\r\n", "DATA"))
	f.Add("multipart/mixed; boundary=b", multipartAnswer("b", "{}", "Location: https://x/y\r\n", ""))
	f.Add("multipart/mixed; boundary=b", "--b\r\n\r\n")
	f.Fuzz(func(t *testing.T, ct, body string) {
		fm, err := parseFederationMultipart(ct, strings.NewReader(body))
		if err != nil {
			return
		}
		if fm.Body != nil {
			data, _ := io.ReadAll(io.LimitReader(fm.Body, int64(len(body))+1))
			if len(data) > len(body) {
				t.Fatalf("%d bytes out of a %d-byte answer", len(data), len(body))
			}
		}
	})
}

// FuzzGIFFrames: the frame walker never panics, and agrees with the
// decoder on the frame count of GIFs that decode.
func FuzzGIFFrames(f *testing.F) {
	g := &gif.GIF{}
	for range 3 {
		g.Image = append(g.Image, image.NewPaletted(image.Rect(0, 0, 4, 3), color.Palette{color.Black, color.White}))
		g.Delay = append(g.Delay, 1)
	}
	var b bytes.Buffer
	gif.EncodeAll(&b, g)
	f.Add(b.Bytes())
	f.Add([]byte("GIF89a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, pixels, err := gifFrames(bytes.NewReader(data))
		if err != nil {
			return
		}
		if frames < 0 || pixels < 0 {
			t.Fatalf("%d frames, %d pixels", frames, pixels)
		}
		if g, err := gif.DecodeAll(bytes.NewReader(data)); err == nil && len(g.Image) != frames {
			t.Fatalf("%d frames counted, %d decoded", frames, len(g.Image))
		}
	})
}

func TestGIFFramesCountsBomb(t *testing.T) {
	g := &gif.GIF{}
	for range 50 {
		g.Image = append(g.Image, image.NewPaletted(image.Rect(0, 0, 1000, 1000), color.Palette{color.Black, color.White}))
		g.Delay = append(g.Delay, 1)
	}
	var b bytes.Buffer
	gif.EncodeAll(&b, g)
	frames, pixels, err := gifFrames(&b)
	if err != nil || frames != 50 || pixels != 50_000_000 {
		t.Errorf("%d frames, %d pixels, %v", frames, pixels, err)
	}
}

func TestPlanThumbnail(t *testing.T) {
	for _, tc := range []struct {
		w, h, bw, bh int
		method       string
		tw, th       int
		src          image.Rectangle
	}{
		{640, 400, 320, 240, "scale", 320, 200, image.Rect(0, 0, 640, 400)},
		{400, 640, 320, 240, "scale", 150, 240, image.Rect(0, 0, 400, 640)},
		{100, 50, 320, 240, "scale", 100, 50, image.Rect(0, 0, 100, 50)},
		{640, 400, 96, 96, "crop", 96, 96, image.Rect(120, 0, 520, 400)},
		{400, 640, 96, 96, "crop", 96, 96, image.Rect(0, 120, 400, 520)},
		{50, 20, 96, 96, "crop", 20, 20, image.Rect(15, 0, 35, 20)},
	} {
		got := planThumbnail(tc.w, tc.h, tc.bw, tc.bh, tc.method)
		if got.Width != tc.tw || got.Height != tc.th || got.Src != tc.src {
			t.Errorf("%dx%d in %dx%d %s: %+v, want %dx%d of %v", tc.w, tc.h, tc.bw, tc.bh, tc.method, got, tc.tw, tc.th, tc.src)
		}
	}
}

func TestPickSize(t *testing.T) {
	sizes, _ := config.ParseThumbnailSizes(config.DefaultThumbnailSizes)
	for _, tc := range []struct {
		w, h   int
		method string
		want   string
	}{
		{32, 32, "crop", "32x32 crop"},
		{33, 20, "crop", "96x96 crop"},
		{100, 100, "crop", "320x240 scale"},
		{320, 240, "scale", "320x240 scale"},
		{10, 10, "scale", "320x240 scale"},
		{700, 500, "scale", "800x600 scale"},
		{2000, 2000, "scale", "800x600 scale"},
	} {
		s := pickSize(sizes, tc.w, tc.h, tc.method)
		if got := fmt.Sprintf("%dx%d %s", s.Width, s.Height, s.Method); got != tc.want {
			t.Errorf("%dx%d %s: %s, want %s", tc.w, tc.h, tc.method, got, tc.want)
		}
	}
}

// The box shrink of a YCbCr photo keeps its colours: a flat colour stays
// that colour to the edges (no green or black border from missed chroma).
func TestResizeKeepsColours(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 1001, 751))
	for i := 0; i < len(src.Pix); i += 4 {
		src.Pix[i], src.Pix[i+1], src.Pix[i+2], src.Pix[i+3] = 200, 60, 30, 255
	}
	var b bytes.Buffer
	jpeg.Encode(&b, src, &jpeg.Options{Quality: 95})
	img, _ := jpeg.Decode(&b)
	for _, method := range []string{"scale", "crop"} {
		plan := planThumbnail(1001, 751, 96, 96, method)
		out := resize(img, plan).(*image.RGBA)
		for _, p := range []image.Point{{0, 0}, {out.Rect.Dx() - 1, out.Rect.Dy() - 1}, {out.Rect.Dx() / 2, out.Rect.Dy() / 2}} {
			c := out.RGBAAt(p.X, p.Y)
			if absDiff(c.R, 200) > 6 || absDiff(c.G, 60) > 6 || absDiff(c.B, 30) > 6 {
				t.Errorf("%s: pixel %v is %v, want about (200,60,30)", method, p, c)
			}
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
