package analytic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// Field is a periodic, stationary, unit-variance Gaussian random field with
// a separable Gaussian covariance. Lengths holds the correlation length in
// elements along the trailing axes of a sample, aligned to the right like
// Upsample Guidance factors: [lH, lW] for images (and for video whose frames
// are independent), [lF, lH, lW] for video correlated in time. A length of 0
// makes the field white along that axis. A Field is immutable once built and
// safe for concurrent use.
type Field struct {
	lengths []float64

	mu    sync.Mutex
	pools map[gridKey][]*workspace
	spec  map[specKey][]float64
}

type gridKey [3]int

type specKey struct {
	n int
	l float64
}

// NewField returns the Field with the given correlation lengths (one to three
// values for the trailing axes, each finite and >= 0).
func NewField(lengths ...float64) (*Field, error) {
	if len(lengths) < 1 || len(lengths) > 3 {
		return nil, fmt.Errorf("analytic: %d correlation lengths, want 1 to 3", len(lengths))
	}
	for _, l := range lengths {
		if !(l >= 0) || math.IsInf(l, 0) {
			return nil, fmt.Errorf("analytic: correlation length %v, want a finite number >= 0", l)
		}
	}
	return &Field{
		lengths: append([]float64(nil), lengths...),
		pools:   make(map[gridKey][]*workspace),
		spec:    make(map[specKey][]float64),
	}, nil
}

// Lengths returns a copy of the correlation lengths.
func (f *Field) Lengths() []float64 { return append([]float64(nil), f.lengths...) }

// spectrum returns Spectrum(n, l), cached per field. The result is shared;
// callers must not modify it.
func (f *Field) spectrum(n int, l float64) []float64 {
	key := specKey{n, l}
	f.mu.Lock()
	s, ok := f.spec[key]
	f.mu.Unlock()
	if ok {
		return s
	}
	s = Spectrum(n, l)
	f.mu.Lock()
	f.spec[key] = s
	f.mu.Unlock()
	return s
}

// Spectrum returns the eigenvalues S(k), k = 0..n-1, of the circulant
// covariance matrix exp(-d^2/(2 l^2)) periodised on a ring of n elements,
// which are the variances of the unitary DFT coefficients of the field along
// that axis. They sum to n (unit variance). l = 0 gives white noise (all 1).
func Spectrum(n int, l float64) []float64 {
	s := make([]float64, n)
	if l == 0 {
		for i := range s {
			s[i] = 1
		}
		return s
	}
	// Periodised covariance row: c(d) = sum over images m of exp(-(d+m n)^2/(2 l^2)).
	c := make([]float64, n)
	images := int(math.Ceil(10*l/float64(n))) + 1
	for d := range n {
		var sum float64
		for m := -images; m <= images; m++ {
			r := float64(d + m*n)
			sum += math.Exp(-r * r / (2 * l * l))
		}
		c[d] = sum
	}
	// c is even on the ring, so its DFT is real: S(k) = sum_d c(d) cos(2 pi k d / n).
	for k := range n {
		var sum float64
		for d := range n {
			sum += c[d] * math.Cos(2*math.Pi*float64(k*d%n)/float64(n))
		}
		s[k] = max(sum, 0)
	}
	return s
}

// workspace holds the FFT plans and buffers for one grid size.
type workspace struct {
	ext   [3]int // F, H, W
	ffts  [3]*fourier.CmplxFFT
	buf   []complex128
	line  []complex128
	eig   [3][]float64
	scale []float64 // per-frequency multiplier, rebuilt per call
}

func (f *Field) getWorkspace(ext [3]int) *workspace {
	key := gridKey(ext)
	f.mu.Lock()
	if list := f.pools[key]; len(list) > 0 {
		ws := list[len(list)-1]
		f.pools[key] = list[:len(list)-1]
		f.mu.Unlock()
		return ws
	}
	f.mu.Unlock()
	ws := &workspace{ext: ext}
	n := ext[0] * ext[1] * ext[2]
	ws.buf = make([]complex128, n)
	ws.scale = make([]float64, n)
	ws.line = make([]complex128, max(ext[0], ext[1], ext[2]))
	off := 3 - len(f.lengths)
	for i := range 3 {
		ws.ffts[i] = fourier.NewCmplxFFT(ext[i])
		l := 0.0
		if i >= off {
			l = f.lengths[i-off]
		}
		ws.eig[i] = f.spectrum(ext[i], l)
	}
	return ws
}

func (f *Field) putWorkspace(ws *workspace) {
	f.mu.Lock()
	f.pools[gridKey(ws.ext)] = append(f.pools[gridKey(ws.ext)], ws)
	f.mu.Unlock()
}

// extents returns the F, H, W extents of a rank-4 or rank-5 shape (F = 1 for
// rank 4), checking that the field's lengths fit the rank.
func (f *Field) extents(shape []int) ([3]int, error) {
	var ext [3]int
	ext[0] = 1
	copy(ext[3-(len(shape)-2):], shape[2:])
	if len(f.lengths) > len(shape)-2 {
		return ext, fmt.Errorf("analytic: field with %d correlation lengths cannot describe a rank-%d tensor", len(f.lengths), len(shape))
	}
	return ext, nil
}

// transform applies the 3-D DFT (inverse when inv) to ws.buf.
func (ws *workspace) transform(inv bool) {
	F, H, W := ws.ext[0], ws.ext[1], ws.ext[2]
	apply := func(t *fourier.CmplxFFT, s []complex128) {
		if inv {
			t.Sequence(s, s)
		} else {
			t.Coefficients(s, s)
		}
	}
	buf := ws.buf
	if W > 1 {
		for r := 0; r < F*H; r++ {
			apply(ws.ffts[2], buf[r*W:r*W+W])
		}
	}
	if H > 1 {
		line := ws.line[:H]
		for z := range F {
			for x := range W {
				base := z*H*W + x
				for y := range H {
					line[y] = buf[base+y*W]
				}
				apply(ws.ffts[1], line)
				for y := range H {
					buf[base+y*W] = line[y]
				}
			}
		}
	}
	if F > 1 {
		line := ws.line[:F]
		for i := range H * W {
			for z := range F {
				line[z] = buf[z*H*W+i]
			}
			apply(ws.ffts[0], line)
			for z := range F {
				buf[z*H*W+i] = line[z]
			}
		}
	}
}

// filterPlanes applies the real, even per-frequency multiplier ws.scale to
// one or two real planes at once (a in the real part, b in the imaginary
// part; b may be nil), writing the results to da and db.
func (ws *workspace) filterPlanes(da, db, a, b []float32) {
	for i := range ws.buf {
		var im float64
		if b != nil {
			im = float64(b[i])
		}
		ws.buf[i] = complex(float64(a[i]), im)
	}
	ws.transform(false)
	for i, m := range ws.scale {
		ws.buf[i] *= complex(m, 0)
	}
	ws.transform(true)
	for i, v := range ws.buf {
		da[i] = float32(real(v))
	}
	if db != nil {
		for i, v := range ws.buf {
			db[i] = float32(imag(v))
		}
	}
}

// setScale fills ws.scale with g(S(f)) / n for every frequency f, where S(f)
// is the field's 3-D spectrum and n the grid size (the unnormalised
// forward-inverse pair multiplies by n).
func (ws *workspace) setScale(g func(s float64) float64) {
	F, H, W := ws.ext[0], ws.ext[1], ws.ext[2]
	inv := 1 / float64(F*H*W)
	i := 0
	for z := range F {
		for y := range H {
			szy := ws.eig[0][z] * ws.eig[1][y]
			for x := range W {
				ws.scale[i] = g(szy*ws.eig[2][x]) * inv
				i++
			}
		}
	}
}

// Denoiser is the exact noise predictor E[eps | x_t] of a Field under a
// variance-preserving schedule. It implements ugo.Denoiser, accepts rank-4
// and rank-5 tensors of any grid size, and is safe for concurrent use.
type Denoiser struct {
	field    *Field
	alphaBar func(t float64) float64
}

// Denoiser returns the exact noise predictor of f for the schedule whose
// cumulative signal level at (fractional) timestep t is alphaBar(t), for
// instance (*schedule.Schedule).AlphaBar.
func (f *Field) Denoiser(alphaBar func(t float64) float64) *Denoiser {
	return &Denoiser{field: f, alphaBar: alphaBar}
}

// PredictNoise implements ugo.Denoiser: for each batch element it writes
// sqrt(1-abar)/(abar*S + 1-abar) * x_t, applied frequency by frequency, to
// dst.
func (d *Denoiser) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	if d.alphaBar == nil {
		return errors.New("analytic: Denoiser has no alphaBar function")
	}
	shape := []int(x.Shape())
	ext, err := d.field.extents(shape)
	if err != nil {
		return err
	}
	ws := d.field.getWorkspace(ext)
	defer d.field.putWorkspace(ws)
	xs, ds := x.Float32s(), dst.Float32s()
	plane := ext[0] * ext[1] * ext[2]
	n, c := shape[0], shape[1]
	for b := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		ab := d.alphaBar(float64(ugo.TimestepAt(t, b)))
		if !(ab >= 0 && ab <= 1) {
			return fmt.Errorf("analytic: alphaBar(%v) = %v, want a value in [0, 1]", ugo.TimestepAt(t, b), ab)
		}
		sn := math.Sqrt(1 - ab)
		ws.setScale(func(s float64) float64 {
			den := ab*s + 1 - ab
			if den == 0 {
				return 0
			}
			return sn / den
		})
		for ch := 0; ch < c; ch += 2 {
			i := (b*c + ch) * plane
			a, da := xs[i:i+plane], ds[i:i+plane]
			if ch+1 < c {
				ws.filterPlanes(da, ds[i+plane:i+2*plane], a, xs[i+plane:i+2*plane])
			} else {
				ws.filterPlanes(da, nil, a, nil)
			}
		}
	}
	return nil
}

// Sample fills dst (a float32 rank-4 or rank-5 tensor) with independent
// draws of the field, one per batch element and channel, using standard
// normal variates from r.
func (f *Field) Sample(dst *tensor.Dense, r *rand.Rand) error {
	shape, err := ugo.CheckSample("dst", dst)
	if err != nil {
		return err
	}
	ext, err := f.extents(shape)
	if err != nil {
		return err
	}
	ws := f.getWorkspace(ext)
	defer f.putWorkspace(ws)
	ws.setScale(math.Sqrt)
	data := dst.Float32s()
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	plane := ext[0] * ext[1] * ext[2]
	for i := 0; i < len(data); i += 2 * plane {
		if i+2*plane <= len(data) {
			ws.filterPlanes(data[i:i+plane], data[i+plane:i+2*plane], data[i:i+plane], data[i+plane:i+2*plane])
		} else {
			ws.filterPlanes(data[i:i+plane], nil, data[i:i+plane], nil)
		}
	}
	return nil
}

// Autocorrelation returns the normalised autocorrelation rho(d), d = 0 ..
// n/2, of the samples in x along axis (an index into x's shape, 2 or more),
// averaged over every other index. The samples are taken as zero-mean
// (periodic boundary), as the field is; rho(0) = 1.
func Autocorrelation(x *tensor.Dense, axis int) ([]float64, error) {
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if axis < 2 || axis >= len(shape) {
		return nil, fmt.Errorf("analytic: axis %d of a rank-%d tensor, want 2 to %d", axis, len(shape), len(shape)-1)
	}
	data := x.Float32s()
	n := shape[axis]
	stride := 1
	for _, d := range shape[axis+1:] {
		stride *= d
	}
	outer := len(data) / (n * stride)
	acc := make([]float64, n/2+1)
	for o := range outer {
		base := o * n * stride
		for i := range stride {
			for lag := range acc {
				var sum float64
				for j := range n {
					a := data[base+j*stride+i]
					b := data[base+((j+lag)%n)*stride+i]
					sum += float64(a) * float64(b)
				}
				acc[lag] += sum
			}
		}
	}
	if acc[0] == 0 {
		return nil, errors.New("analytic: autocorrelation of an all-zero tensor")
	}
	for lag := len(acc) - 1; lag >= 0; lag-- {
		acc[lag] /= acc[0]
	}
	return acc, nil
}

// CorrelationLength estimates the correlation length of x along axis: the
// lag, interpolated linearly between integer lags, at which the
// autocorrelation (see Autocorrelation) first falls to exp(-1/2). For the
// Gaussian covariance of a Field this is exactly the length l. If the
// autocorrelation never falls that far within half the axis, the result is
// +Inf.
func CorrelationLength(x *tensor.Dense, axis int) (float64, error) {
	rho, err := Autocorrelation(x, axis)
	if err != nil {
		return 0, err
	}
	return crossing(rho, math.Exp(-0.5)), nil
}

func crossing(rho []float64, level float64) float64 {
	for d := 1; d < len(rho); d++ {
		if rho[d] <= level {
			return float64(d-1) + (rho[d-1]-level)/(rho[d-1]-rho[d])
		}
	}
	return math.Inf(1)
}
