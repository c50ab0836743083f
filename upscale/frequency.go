package upscale

import (
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/resize"
)

// DefaultCutoff is the low-pass cutoff sf used when MixOptions.Cutoff or
// StructureOptions.Cutoff is 0: the low-pass keeps what survives
// downsampling to a quarter of the size (ScaleDiff uses 0.25 for FLUX and
// 0.125 for SDXL).
const DefaultCutoff = 0.25

// lowPass is LP for one plane size: antialiased bilinear down by sf, then
// bilinear back up. It is safe for concurrent use.
type lowPass struct {
	down, up *resize.Plan
	lh, lw   int
}

// newLowPass returns LP for h x w planes and cutoff sf in (0, 1].
func newLowPass(h, w int, sf float64) (*lowPass, error) {
	if sf == 0 {
		sf = DefaultCutoff
	}
	if !(sf > 0 && sf <= 1) {
		return nil, fmt.Errorf("upscale: cutoff %v, want a value in (0, 1]", sf)
	}
	lh := max(1, int(math.Round(float64(h)*sf)))
	lw := max(1, int(math.Round(float64(w)*sf)))
	down, err := resize.AntialiasBilinear.Plan(lh, lw, h, w)
	if err != nil {
		return nil, err
	}
	up, err := resize.Bilinear.Plan(h, w, lh, lw)
	if err != nil {
		return nil, err
	}
	return &lowPass{down: down, up: up, lh: lh, lw: lw}, nil
}

// smallLen returns the scratch length apply needs for planes planes.
func (lp *lowPass) smallLen(planes int) int { return planes * lp.lh * lp.lw }

// apply writes LP(src) into dst (whole planes); small is scratch of
// smallLen values.
func (lp *lowPass) apply(dst, src, small []float32) {
	lp.down.Scale(small, src)
	lp.up.Scale(dst, small)
}

// LowPass returns LP(x), the low frequencies of x (float32, N,C,H,W or any
// rank >= 2): x resized by the factor sf in (0, 1] with
// resize.AntialiasBilinear (to round(sf*H) x round(sf*W), at least 1x1),
// then back to H x W with resize.Bilinear, as ScaleDiff defines it. sf = 0
// means DefaultCutoff; sf = 1 returns a copy of x.
func LowPass(x *tensor.Dense, sf float64) (*tensor.Dense, error) {
	shape, err := checkAny("x", x)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	lp, err := newLowPass(shape[r-2], shape[r-1], sf)
	if err != nil {
		return nil, err
	}
	src := x.Float32s()
	planes := len(src) / (shape[r-2] * shape[r-1])
	out := make([]float32, len(src))
	lp.apply(out, src, make([]float32, lp.smallLen(planes)))
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(out)), nil
}

// MixFrequencies returns Latent Frequency Mixing (ScaleDiff, arXiv
// 2510.25818):
//
//	LP(low) + (high - LP(high))
//
// the low frequencies of low and the high frequencies of high, which have
// the same shape; LP is LowPass with cutoff sf. In ScaleDiff, low is the
// latent upsampled in latent space (faithful structure, blurred detail)
// and high the latent of the image upsampled in RGB space and re-encoded
// (sharp detail the VAE understands).
func MixFrequencies(low, high *tensor.Dense, sf float64) (*tensor.Dense, error) {
	ls, err := checkAny("low", low)
	if err != nil {
		return nil, err
	}
	hs, err := checkAny("high", high)
	if err != nil {
		return nil, err
	}
	if !slices.Equal([]int(ls), []int(hs)) {
		return nil, &ugo.ShapeError{What: "high", Got: hs, Want: fmt.Sprintf("the shape of low %v", ls)}
	}
	r := len(ls)
	lp, err := newLowPass(ls[r-2], ls[r-1], sf)
	if err != nil {
		return nil, err
	}
	l, h := low.Float32s(), high.Float32s()
	planes := len(l) / (ls[r-2] * ls[r-1])
	small := make([]float32, lp.smallLen(planes))
	out := make([]float32, len(l))
	tmp := make([]float32, len(l))
	lp.apply(out, l, small)
	lp.apply(tmp, h, small)
	for i := range out {
		out[i] += h[i] - tmp[i]
	}
	return tensor.New(tensor.WithShape(ls...), tensor.WithBacking(out)), nil
}

// checkAny validates a float32 tensor of rank >= 2 with a dense backing
// slice and returns its shape.
func checkAny(name string, x *tensor.Dense) ([]int, error) {
	return ugo.CheckDense(name, x, 2)
}
