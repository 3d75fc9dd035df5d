package mediaapi

// Image decoding, scaling and encoding for thumbnails. Pure: no I/O but
// the readers given, no database.
//
// A large photo is first shrunk by an integer factor with a box filter
// (an average of k×k pixels, computed on the decoder's own planes, which
// is cheap and alias-free), then scaled to the exact size with
// Catmull-Rom, so that a 12-megapixel JPEG becomes a 320×240 thumbnail in
// a small fraction of the time a Catmull-Rom pass over the whole image
// would take.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	xdraw "golang.org/x/image/draw"

	"github.com/myelin-chat/myelin/internal/config"
	_ "golang.org/x/image/webp" // registers WebP with image.Decode
)

// errNotImage means the content cannot be thumbnailed.
var errNotImage = errors.New("not an image that can be thumbnailed")

// errTooManyPixels means the image is over max_thumbnail_pixels.
var errTooManyPixels = errors.New("image too large to thumbnail")

// thumbnailable lists the content types thumbnails are made of, and the
// decoder format names image.Decode reports for them.
var thumbnailable = map[string]string{
	"image/jpeg": "jpeg", "image/jpg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
}

// imageInfo is what the header of an image says.
type imageInfo struct {
	Format        string // "jpeg", "png", "gif", "webp"
	Width, Height int
}

// probeImage reads an image's header only (image.DecodeConfig), so that
// its size can be checked before anything is decoded.
func probeImage(r io.Reader, maxPixels int64) (imageInfo, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return imageInfo{}, fmt.Errorf("%w: %v", errNotImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return imageInfo{}, fmt.Errorf("%w: empty image", errNotImage)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return imageInfo{}, fmt.Errorf("%w: %dx%d is more than %d pixels", errTooManyPixels, cfg.Width, cfg.Height, maxPixels)
	}
	return imageInfo{Format: format, Width: cfg.Width, Height: cfg.Height}, nil
}

// thumbTarget is the size a thumbnail is made at, and the part of the
// source it shows.
type thumbTarget struct {
	Width, Height int
	Src           image.Rectangle // in source coordinates
}

// planThumbnail computes the thumbnail of a w×h image for a requested
// size and method. "scale" keeps the aspect ratio and fits the image in
// the box; "crop" fills the box, cutting the middle out of the image.
// Neither enlarges: a source smaller than the box gives a thumbnail of its
// own size (or its crop's).
func planThumbnail(w, h, boxW, boxH int, method string) thumbTarget {
	if method == "crop" {
		// The largest centred rectangle of the box's aspect ratio.
		cw, ch := w, w*boxH/boxW
		if ch > h {
			cw, ch = h*boxW/boxH, h
		}
		cw, ch = max(cw, 1), max(ch, 1)
		x0, y0 := (w-cw)/2, (h-ch)/2
		tw, th := boxW, boxH
		if cw < boxW {
			tw, th = cw, ch
		}
		return thumbTarget{Width: tw, Height: th, Src: image.Rect(x0, y0, x0+cw, y0+ch)}
	}
	tw, th := w, h
	if w > boxW || h > boxH {
		// Fit: the side that limits sets the scale.
		if int64(boxW)*int64(h) <= int64(boxH)*int64(w) {
			tw, th = boxW, int(int64(h)*int64(boxW)/int64(w))
		} else {
			tw, th = int(int64(w)*int64(boxH)/int64(h)), boxH
		}
	}
	return thumbTarget{Width: max(tw, 1), Height: max(th, 1), Src: image.Rect(0, 0, w, h)}
}

// shrunk is t for the source shrunk by k (boxShrink of the whole image).
func (t thumbTarget) shrunk(k int) thumbTarget {
	if k <= 1 {
		return t
	}
	r := image.Rect(t.Src.Min.X/k, t.Src.Min.Y/k, t.Src.Max.X/k, t.Src.Max.Y/k)
	if r.Dx() < 1 || r.Dy() < 1 {
		r = image.Rect(r.Min.X, r.Min.Y, r.Min.X+1, r.Min.Y+1)
	}
	return thumbTarget{Width: t.Width, Height: t.Height, Src: r}
}

// sharedShrinkFactor is the largest whole factor a w×h image can be
// shrunk by and still be at least twice every thumbnail of sizes.
func sharedShrinkFactor(w, h int, sizes []config.ThumbnailSize) int {
	k := 0
	for _, s := range sizes {
		p := planThumbnail(w, h, s.Width, s.Height, s.Method)
		f := min(p.Src.Dx()/(2*p.Width), p.Src.Dy()/(2*p.Height))
		if k == 0 || f < k {
			k = f
		}
	}
	return max(k, 1)
}

// resize returns the part t.Src of img scaled to t's size.
func resize(img image.Image, t thumbTarget) image.Image {
	src, rect := img, t.Src.Add(img.Bounds().Min)
	// Shrink by a whole factor first while the result stays at least
	// twice the target, so Catmull-Rom works on few pixels.
	k := min(rect.Dx()/(2*t.Width), rect.Dy()/(2*t.Height))
	if k >= 2 {
		src = boxShrink(img, rect, k)
		rect = src.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, t.Width, t.Height))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, rect, xdraw.Src, nil)
	return dst
}

// boxShrink averages k×k blocks of the part rect of img.
func boxShrink(img image.Image, rect image.Rectangle, k int) image.Image {
	if y, ok := img.(*image.YCbCr); ok {
		return shrinkYCbCr(y, rect, k)
	}
	var rgba *image.RGBA
	if r, ok := img.(*image.RGBA); ok {
		rgba = r
	} else {
		// Premultiplied RGBA, so that transparent pixels add no colour.
		rgba = image.NewRGBA(image.Rect(0, 0, rect.Dx(), rect.Dy()))
		xdraw.Draw(rgba, rgba.Bounds(), img, rect.Min, xdraw.Src)
		rect = rgba.Bounds()
	}
	return shrinkRGBA(rgba, rect, k)
}

func shrinkRGBA(src *image.RGBA, rect image.Rectangle, k int) *image.RGBA {
	dw, dh := rect.Dx()/k, rect.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	sums := make([]uint32, dw*4)
	n := uint32(k * k)
	for dy := 0; dy < dh; dy++ {
		clear(sums)
		for sy := 0; sy < k; sy++ {
			row := src.Pix[src.PixOffset(rect.Min.X, rect.Min.Y+dy*k+sy):]
			for dx := 0; dx < dw; dx++ {
				p := row[dx*k*4 : dx*k*4+k*4]
				s := sums[dx*4 : dx*4+4]
				for i := 0; i < len(p); i += 4 {
					s[0] += uint32(p[i])
					s[1] += uint32(p[i+1])
					s[2] += uint32(p[i+2])
					s[3] += uint32(p[i+3])
				}
			}
		}
		out := dst.Pix[dy*dst.Stride:]
		for i := range sums {
			out[i] = uint8((sums[i] + n/2) / n)
		}
	}
	return dst
}

// shrinkYCbCr shrinks each plane of a YCbCr image by k, keeping its
// chroma subsampling.
func shrinkYCbCr(src *image.YCbCr, rect image.Rectangle, k int) *image.YCbCr {
	dw, dh := rect.Dx()/k, rect.Dy()/k
	dst := image.NewYCbCr(image.Rect(0, 0, dw, dh), src.SubsampleRatio)
	// Plane coordinates are image coordinates less Rect.Min.
	ox, oy := rect.Min.X-src.Rect.Min.X, rect.Min.Y-src.Rect.Min.Y
	shrinkPlane(dst.Y, dst.YStride, dw, dh, src.Y, src.YStride, src.Rect.Dx(), src.Rect.Dy(), ox, oy, k)
	// The chroma planes are subsampled alike in source and destination,
	// so a chroma sample of the destination averages k×k of the source's.
	cw, ch := chromaSize(dw, dh, src.SubsampleRatio)
	sx, sy := chromaScale(src.SubsampleRatio)
	scw, sch := chromaSize(src.Rect.Dx(), src.Rect.Dy(), src.SubsampleRatio)
	shrinkPlane(dst.Cb, dst.CStride, cw, ch, src.Cb, src.CStride, scw, sch, ox/sx, oy/sy, k)
	shrinkPlane(dst.Cr, dst.CStride, cw, ch, src.Cr, src.CStride, scw, sch, ox/sx, oy/sy, k)
	return dst
}

// shrinkPlane averages k×k blocks of a plane of sw×sh samples from
// (ox, oy) into a dw×dh plane. Blocks that run past the source's edge
// average the samples there are; a block wholly outside repeats its
// neighbour.
func shrinkPlane(dst []byte, dstStride, dw, dh int, src []byte, srcStride, sw, sh, ox, oy, k int) {
	sums := make([]uint32, dw)
	for dy := 0; dy < dh; dy++ {
		out := dst[dy*dstStride : dy*dstStride+dw]
		y0 := oy + dy*k
		y1 := min(y0+k, sh)
		if y1 <= y0 {
			if dy > 0 {
				copy(out, dst[(dy-1)*dstStride:(dy-1)*dstStride+dw])
			}
			continue
		}
		clear(sums)
		for y := y0; y < y1; y++ {
			row := src[y*srcStride : y*srcStride+sw]
			for dx := range sums {
				x0 := ox + dx*k
				x1 := min(x0+k, sw)
				if x1 <= x0 {
					break
				}
				var s uint32
				for _, v := range row[x0:x1] {
					s += uint32(v)
				}
				sums[dx] += s
			}
		}
		for dx := range out {
			x0 := ox + dx*k
			x1 := min(x0+k, sw)
			if x1 <= x0 {
				if dx > 0 {
					out[dx] = out[dx-1]
				}
				continue
			}
			n := uint32((x1 - x0) * (y1 - y0))
			out[dx] = uint8((sums[dx] + n/2) / n)
		}
	}
}

func chromaScale(r image.YCbCrSubsampleRatio) (sx, sy int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

func chromaSize(w, h int, r image.YCbCrSubsampleRatio) (int, int) {
	sx, sy := chromaScale(r)
	return (w + sx - 1) / sx, (h + sy - 1) / sy
}

// encodeThumbnail writes img as JPEG (for photographs, which have no
// transparency) or PNG, and returns the content type.
func encodeThumbnail(w io.Writer, img image.Image, asJPEG bool) (string, error) {
	if asJPEG {
		return "image/jpeg", jpeg.Encode(w, img, &jpeg.Options{Quality: 85})
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return "image/png", enc.Encode(w, img)
}

// thumbnailAsJPEG says whether a source format's thumbnails are JPEG:
// those of JPEGs and of opaque (lossy) WebP images.
func thumbnailAsJPEG(format string, img image.Image) bool {
	switch format {
	case "jpeg":
		return true
	case "webp":
		_, opaque := img.(*image.YCbCr)
		return opaque
	}
	return false
}

// gifFrames counts a GIF's frames and adds up their areas by walking the
// file's blocks, without decoding any: an animated GIF is decoded whole
// only if all its frames together fit the pixel limit (a small file can
// hold thousands of full-size frames).
func gifFrames(r io.Reader) (frames int, pixels int64, err error) {
	br := bufio.NewReader(r)
	hdr := make([]byte, 13)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return 0, 0, err
	}
	if !bytes.HasPrefix(hdr, []byte("GIF8")) {
		return 0, 0, errors.New("not a GIF")
	}
	if hdr[10]&0x80 != 0 {
		if _, err := br.Discard(3 << (int(hdr[10]&7) + 1)); err != nil {
			return 0, 0, err
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		switch b {
		case 0x3b: // trailer
			return frames, pixels, nil
		case 0x21: // extension: label, then sub-blocks
			if _, err := br.ReadByte(); err != nil {
				return 0, 0, err
			}
			if err := skipSubBlocks(br); err != nil {
				return 0, 0, err
			}
		case 0x2c: // image descriptor
			d := make([]byte, 9)
			if _, err := io.ReadFull(br, d); err != nil {
				return 0, 0, err
			}
			w, h := int64(d[4])|int64(d[5])<<8, int64(d[6])|int64(d[7])<<8
			frames++
			pixels += w * h
			if d[8]&0x80 != 0 {
				if _, err := br.Discard(3 << (int(d[8]&7) + 1)); err != nil {
					return 0, 0, err
				}
			}
			if _, err := br.ReadByte(); err != nil { // LZW minimum code size
				return 0, 0, err
			}
			if err := skipSubBlocks(br); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, fmt.Errorf("GIF: unknown block 0x%02x", b)
		}
	}
}

func skipSubBlocks(br *bufio.Reader) error {
	for {
		n, err := br.ReadByte()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
	}
}

// resizeAnimatedGIF scales every frame of an animated GIF: each frame is
// drawn on the canvas as the disposal methods say, the canvas scaled, and
// the result mapped back to the frame's palette.
func resizeAnimatedGIF(g *gif.GIF, t thumbTarget) *gif.GIF {
	bounds := image.Rect(0, 0, g.Config.Width, g.Config.Height)
	canvas := image.NewRGBA(bounds)
	out := &gif.GIF{LoopCount: g.LoopCount, Config: image.Config{Width: t.Width, Height: t.Height}}
	for i, frame := range g.Image {
		var saved *image.RGBA
		disposal := byte(0)
		if i < len(g.Disposal) {
			disposal = g.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			saved = image.NewRGBA(bounds)
			copy(saved.Pix, canvas.Pix)
		}
		xdraw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, xdraw.Over)
		scaled := resize(canvas, thumbTarget{Width: t.Width, Height: t.Height, Src: t.Src})
		pal := append(color.Palette(nil), frame.Palette...)
		if len(pal) == 0 {
			pal = color.Palette{color.Transparent, color.Black, color.White}
		}
		pm := image.NewPaletted(image.Rect(0, 0, t.Width, t.Height), pal)
		xdraw.Draw(pm, pm.Bounds(), scaled, image.Point{}, xdraw.Src)
		out.Image = append(out.Image, pm)
		if i < len(g.Delay) {
			out.Delay = append(out.Delay, g.Delay[i])
		} else {
			out.Delay = append(out.Delay, 10)
		}
		// Every output frame is a full canvas, so nothing needs disposing.
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		switch disposal {
		case gif.DisposalBackground:
			xdraw.Draw(canvas, frame.Bounds(), image.Transparent, image.Point{}, xdraw.Src)
		case gif.DisposalPrevious:
			canvas = saved
		}
	}
	return out
}
