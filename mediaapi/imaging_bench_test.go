//go:build unix

package mediaapi

import (
	"bytes"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's CPU time so far (user and system): on a shared
// machine it says more about the cost of the work than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU milliseconds per operation to b's results.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// photoJPEG is a 4000×3000 (12 MP) JPEG with smooth gradients and noise,
// about the size and entropy of a phone photo.
func photoJPEG(tb testing.TB) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < 3000; y++ {
		for x := 0; x < 4000; x++ {
			img.Y[y*img.YStride+x] = uint8((x/16+y/12)%200 + r.IntN(40))
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = uint8(100+i%50), uint8(140-i%40)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// BenchmarkThumbnail12MPJPEG: decode a 12 MP JPEG, scale it to 320×240
// and encode the thumbnail, as a first thumbnail request does.
func BenchmarkThumbnail12MPJPEG(b *testing.B) {
	data := photoJPEG(b)
	b.SetBytes(int64(len(data)))
	start := cpuTime()
	defer reportCPU(b, start)
	for b.Loop() {
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		plan := planThumbnail(4000, 3000, 320, 240, "scale")
		if _, err := encodeThumbnail(io.Discard, resize(img, plan), true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode12MPJPEG: the decode alone, the bulk of the time.
func BenchmarkDecode12MPJPEG(b *testing.B) {
	data := photoJPEG(b)
	start := cpuTime()
	defer reportCPU(b, start)
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResize12MP: the scaling alone (box shrink and Catmull-Rom).
func BenchmarkResize12MP(b *testing.B) {
	img, err := jpeg.Decode(bytes.NewReader(photoJPEG(b)))
	if err != nil {
		b.Fatal(err)
	}
	plan := planThumbnail(4000, 3000, 320, 240, "scale")
	start := cpuTime()
	defer reportCPU(b, start)
	for b.Loop() {
		resize(img, plan)
	}
}
