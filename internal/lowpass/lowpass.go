package lowpass

import (
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/resize"
)

// DefaultCutoff is the cutoff sf a cutoff of 0 means: the low-pass keeps
// what survives downsampling to a quarter of the size (ScaleDiff uses 0.25
// for FLUX and 0.125 for SDXL).
const DefaultCutoff = 0.25

// Filter is LP for one plane size. It is safe for concurrent use.
type Filter struct {
	down, up *resize.Plan
	lh, lw   int
}

// New returns LP for h x w planes and cutoff sf in (0, 1] (0 means
// DefaultCutoff): planes resized to round(sf*h) x round(sf*w), at least
// 1x1, with resize.AntialiasBilinear, then back with resize.Bilinear.
func New(h, w int, sf float64) (*Filter, error) {
	if sf == 0 {
		sf = DefaultCutoff
	}
	if !(sf > 0 && sf <= 1) {
		return nil, fmt.Errorf("cutoff %v, want a value in (0, 1]", sf)
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
	return &Filter{down: down, up: up, lh: lh, lw: lw}, nil
}

// SmallLen returns the scratch length Apply needs for planes planes.
func (f *Filter) SmallLen(planes int) int { return planes * f.lh * f.lw }

// Apply writes LP(src) into dst (whole planes); small is scratch of
// SmallLen values.
func (f *Filter) Apply(dst, src, small []float32) {
	f.down.Scale(small, src)
	f.up.Scale(dst, small)
}
