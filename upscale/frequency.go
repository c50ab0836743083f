package upscale

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/lowpass"
)

// DefaultCutoff is the low-pass cutoff sf used when MixOptions.Cutoff or
// guidance.StructureOptions.Cutoff is 0: the low-pass keeps what survives
// downsampling to a quarter of the size (ScaleDiff uses 0.25 for FLUX and
// 0.125 for SDXL).
const DefaultCutoff = lowpass.DefaultCutoff

// newLowPass returns LP for h x w planes and cutoff sf.
func newLowPass(h, w int, sf float64) (*lowpass.Filter, error) {
	lp, err := lowpass.New(h, w, sf)
	if err != nil {
		return nil, fmt.Errorf("upscale: %w", err)
	}
	return lp, nil
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
	lp.Apply(out, src, make([]float32, lp.SmallLen(planes)))
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
	small := make([]float32, lp.SmallLen(planes))
	out := make([]float32, len(l))
	tmp := make([]float32, len(l))
	lp.Apply(out, l, small)
	lp.Apply(tmp, h, small)
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
