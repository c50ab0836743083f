package fashion

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/ugo-diffusion/ugo/resize"
)

// maxIDXValues bounds the pixels ReadIDXImages accepts (4 GiB as float32).
const maxIDXValues = 1 << 30

// ReadIDXImages reads a gzipped IDX3 file of uint8 images (the MNIST and
// Fashion-MNIST format) and returns them as N x 1 x H x W float32 values
// scaled to [-1, 1], the range the diffusion model was trained on.
func ReadIDXImages(path string) (data []float32, n, h, w int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	var hdr [4]uint32
	if err := binary.Read(gz, binary.BigEndian, &hdr); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: reading header: %w", path, err)
	}
	if hdr[0] != 0x00000803 {
		return nil, 0, 0, 0, fmt.Errorf("%s: magic %#x, want 0x803 (uint8, 3 dimensions)", path, hdr[0])
	}
	n, h, w = int(hdr[1]), int(hdr[2]), int(hdr[3])
	// Each factor is below 2^32, so the checks below cannot overflow.
	if n <= 0 || h <= 0 || w <= 0 || h > 1<<14 || w > 1<<14 || n > maxIDXValues/(h*w) {
		return nil, 0, 0, 0, fmt.Errorf("%s: implausible dimensions %d x %d x %d", path, n, h, w)
	}
	// Read what is there rather than trusting the header with an
	// allocation: a short file costs its own size, not the header's.
	raw, err := io.ReadAll(io.LimitReader(gz, int64(n*h*w)))
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: reading %d images: %w", path, n, err)
	}
	if len(raw) != n*h*w {
		return nil, 0, 0, 0, fmt.Errorf("%s: reading %d images: %w", path, n, io.ErrUnexpectedEOF)
	}
	data = make([]float32, len(raw))
	for i, b := range raw {
		data[i] = float32(b)/127.5 - 1
	}
	return data, n, h, w, nil
}

// AreaDownsample averages non-overlapping f x f blocks of n single-channel
// h x w images into dst (n x h/f x w/f) with resize.Area. It panics, as
// resize.Plan.Scale does, when the sizes or lengths do not fit.
func AreaDownsample(dst, src []float32, n, h, w, f int) {
	plan, err := resize.Area.Plan(h/f, w/f, h, w)
	if err != nil {
		panic(fmt.Sprintf("fashion: AreaDownsample: %v", err))
	}
	plan.Scale(dst[:n*(h/f)*(w/f)], src[:n*h*w])
}
