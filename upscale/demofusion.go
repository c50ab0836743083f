package upscale

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/tiling"
)

// DemoFusion is the stage of DemoFusion's progressive upscaling (Du et al.,
// "DemoFusion: Democratising High-Resolution Image Generation With No $$$",
// CVPR 2024, arXiv 2311.16973) with its two global paths: the input is
// upsampled to Height x Width, noised to the first step of a full run, and
// denoised from there with
//
//   - the skip residual: the sample entering step i (timestep t) is
//     blended with the upsampled input noised to step i, with the same
//     noise at every step:
//     x <- (1 - c1) x + c1 noised_i, c1 = Skip * cosf(t)^Alpha1,
//     where cosf(t) = (1 + cos(pi (T - t) / T)) / 2 and T is the number
//     of training steps. It is a sampler.Hook (Hook.Sample), so it works
//     with every Solver;
//   - dilated sampling: the model's prediction on the whole sample (the
//     local path; with Upsample Guidance when Upsample is set) is blended
//     with that of the dilated path, c2 = Dilated * cosf(t)^Alpha2:
//     eps <- (1 - c2) eps + c2 eps_dilated. The dilated path splits the
//     sample into Dilation x Dilation interleaved sub-grids (x[h::s,
//     w::s]), denoises them as separate images in one batched call of
//     Sampling.Model and interleaves the predictions back. Its input is
//     first smoothed by a Gaussian of sigma Sigma * c3, c3 = 0.99
//     cosf(t)^Alpha3 + 0.01, over a (2s-1)x(2s-1) window, and renormalised
//     to the sample's own mean and standard deviation (per image), so that
//     the sub-grids are not aliased noise.
//
// DemoFusion blends the updates of its paths after a scheduler step each;
// for a step that is affine in the model output at a fixed sample (DDIM,
// Euler, the first-order steps of the multistep solvers) that is the same
// as blending the predictions, which is what this stage does, for every
// Solver. Its local path is the model on the whole canvas, or on tiles
// (Tile: DemoFusion's MultiDiffusion), with or without Upsample Guidance. Progressive
// upscaling is a chain of stages, each at the next multiple of the
// training size: Generate at the training size, then DemoFusion at 2x, 3x
// and so on (upscale.Run).
//
// With Skip 0 and Dilated 0 (or Dilation 1) the stage is Refine at
// strength 1 with the same Filter, Upsample and Tile, bit for bit: its noise is
// the same one draw from Sampling.Noise, then the solver's.
// DefaultDemoFusion has the paper's settings.
type DemoFusion struct {
	// Height and Width are the output size. Required.
	Height, Width int
	// Filter upsamples the input; nil means resize.Bicubic.
	Filter resize.Strategy
	// Upsample, if not nil, applies Upsample Guidance on the local path,
	// with Sampling.ClampRange's block clamp; its Factors are derived
	// from Sampling.Trained when that is set.
	Upsample *guidance.UpsampleOptions
	// Tile, if not nil, runs the local path on overlapping tiles (package
	// tiling) of Tile.Size, or of Sampling.Trained when Tile.Size is zero:
	// DemoFusion's own local path (MultiDiffusion). With Upsample, only the
	// high-resolution call is tiled.
	Tile *tiling.Options
	// Skip scales the skip-residual weight c1; 1 is DemoFusion's, 0 turns
	// the skip residual off. Alpha1 is its exponent; 0 means 3.
	Skip, Alpha1 float64
	// Dilated scales the dilated path's weight c2; 1 is DemoFusion's, 0
	// turns the path off. Alpha2 is its exponent; 0 means 1.
	Dilated, Alpha2 float64
	// Dilation is the sub-grid factor s of the dilated path; 0 means the
	// stage's scale over the training size, Height / Sampling.Trained[0]
	// (DemoFusion's choice), and 1 turns the path off. Height and Width
	// must be divisible by it.
	Dilation int
	// Sigma is the standard deviation, in sample pixels, of the Gaussian
	// smoothing of the dilated path's input at c3 = 1; 0 means 0.8 and a
	// negative value turns the smoothing off. Alpha3 is the exponent of
	// c3; 0 means 1.
	Sigma, Alpha3 float64
}

// DefaultDemoFusion returns the DemoFusion stage at Height x Width with the
// paper's settings: skip residual and dilated path at full weight, alpha_1
// = 3, alpha_2 = alpha_3 = 1, sigma 0.8, dilation the stage's scale.
func DefaultDemoFusion(height, width int) DemoFusion {
	return DemoFusion{Height: height, Width: width, Skip: 1, Dilated: 1}
}

// resolved returns st with its defaults filled in, and checks it.
func (st DemoFusion) resolved(s *Sampling) (DemoFusion, error) {
	if st.Height <= 0 || st.Width <= 0 {
		return st, fmt.Errorf("upscale: DemoFusion at %dx%d, want positive sizes", st.Height, st.Width)
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"Skip", st.Skip}, {"Alpha1", st.Alpha1}, {"Dilated", st.Dilated}, {"Alpha2", st.Alpha2}, {"Alpha3", st.Alpha3}} {
		if !(v.v >= 0 && v.v <= math.MaxFloat32) {
			return st, fmt.Errorf("upscale: DemoFusion %s %v, want a finite number >= 0", v.name, v.v)
		}
	}
	if st.Skip > 1 || st.Dilated > 1 {
		return st, fmt.Errorf("upscale: DemoFusion Skip %v and Dilated %v, want weights in [0, 1]", st.Skip, st.Dilated)
	}
	if math.IsNaN(st.Sigma) || math.IsInf(st.Sigma, 0) {
		return st, fmt.Errorf("upscale: DemoFusion Sigma %v, want a finite number", st.Sigma)
	}
	if st.Alpha1 == 0 {
		st.Alpha1 = 3
	}
	if st.Alpha2 == 0 {
		st.Alpha2 = 1
	}
	if st.Alpha3 == 0 {
		st.Alpha3 = 1
	}
	if st.Sigma == 0 {
		st.Sigma = 0.8
	}
	if st.Dilated == 0 {
		return st, nil
	}
	if st.Dilation < 0 {
		return st, fmt.Errorf("upscale: DemoFusion Dilation %d, want >= 0", st.Dilation)
	}
	if st.Dilation == 0 {
		th := s.Trained[0]
		if th <= 0 {
			return st, errors.New("upscale: DemoFusion's dilated path needs Dilation or Sampling.Trained")
		}
		if st.Height%th != 0 {
			return st, fmt.Errorf("upscale: DemoFusion at height %d: not a multiple of the trained %d; set Dilation", st.Height, th)
		}
		st.Dilation = st.Height / th
	}
	if d := st.Dilation; st.Height%d != 0 || st.Width%d != 0 {
		return st, fmt.Errorf("upscale: DemoFusion at %dx%d: not divisible by the dilation %d", st.Height, st.Width, d)
	}
	return st, nil
}

// Run implements Stage.
func (st DemoFusion) Run(ctx context.Context, s *Sampling, x *tensor.Dense) (*tensor.Dense, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.Schedule == nil {
		return nil, errors.New("upscale: DemoFusion needs Sampling.Schedule (its weights follow the training steps)")
	}
	st, err := st.resolved(s)
	if err != nil {
		return nil, err
	}
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if len(shape) != 4 {
		return nil, &ugo.ShapeError{What: "x", Got: shape, Want: "an N,C,H,W sample"}
	}
	if n, _ := s.batch(); shape[0] != n {
		return nil, &ugo.ShapeError{What: "x", Got: shape, Want: fmt.Sprintf("a batch of %d (one per noise source)", n)}
	}
	n, c := shape[0], shape[1]
	// The sample, the reference, the noise, the hook's buffer, the
	// dilated path's four, and the sampler's and guidance's: about 14.
	if need := ugo.TensorBytes(14, n, c, st.Height, st.Width); need > ugo.MemoryLimit() {
		return nil, ugo.CheckMemory(fmt.Sprintf("upscale: DemoFusion of %d %dx%d samples", n, st.Height, st.Width), need)
	}
	ref, err := Interpolate{Height: st.Height, Width: st.Width, Filter: st.Filter}.Run(ctx, s, x)
	if err != nil {
		return nil, err
	}
	model, clamp, err := s.model(st.Tile, st.Upsample, st.Height, st.Width)
	if err != nil {
		return nil, err
	}
	T := s.Schedule.Len()
	if st.Dilated > 0 && st.Dilation > 1 {
		model = &dilated{local: model, plain: s.Model, s: st.Dilation, weight: st.Dilated, alpha2: st.Alpha2,
			sigma: st.Sigma, alpha3: st.Alpha3, T: T}
	}
	opts := s.options(s.Steps, 0, nil)
	size := len(ref.Float32s())
	hook := &skipResidual{clamp: clamp, ref: ref.Float32s(), z: make([]float32, size), buf: make([]float32, size),
		weight: st.Skip, alpha: st.Alpha1, T: T}
	// The noise of the start, one draw as Refine's Strength draws it.
	opts.Noise.Normal(hook.z)
	opts.Hook = hook
	out := tensor.New(tensor.WithShape(ref.Shape()...), tensor.WithBacking(make([]float32, size)))
	if err := sampler.Sample(ctx, model, s.Solver, out, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// cosineFactor is DemoFusion's (1 + cos(pi (T - t) / T)) / 2: 1 at t = T,
// 0 at t = 0.
func cosineFactor(t float32, T int) float64 {
	return 0.5 * (1 + math.Cos(math.Pi*(float64(T)-float64(t))/float64(T)))
}

// skipResidual is the Hook of DemoFusion's skip residual, chained after an
// optional clamp hook on x0.
type skipResidual struct {
	clamp         sampler.Hook
	ref, z, buf   []float32
	weight, alpha float64
	T             int
	started       bool
}

// X0 implements sampler.Hook with the clamp hook, if any.
func (h *skipResidual) X0(ctx context.Context, at sampler.HookStep, x0 []float32) error {
	if h.clamp == nil {
		return nil
	}
	return h.clamp.X0(ctx, at, x0)
}

// Sample implements sampler.Hook: the first step starts from the reference
// noised to its level; later ones blend in the reference noised to theirs.
func (h *skipResidual) Sample(_ context.Context, at sampler.HookStep, x []float32) error {
	if at.Step >= at.Steps {
		return nil
	}
	first := !h.started
	h.started = true
	var c1 float64
	if !first {
		c1 = h.weight * math.Pow(cosineFactor(at.Timestep(), h.T), h.alpha)
		if c1 == 0 {
			return nil
		}
	}
	if err := at.Solver.AddNoiseAt(h.buf, h.ref, h.z, at.Trajectory, at.Step); err != nil {
		return err
	}
	if first {
		copy(x, h.buf)
		return nil
	}
	a, b := float32(1-c1), float32(c1)
	for i, v := range x {
		x[i] = a*v + b*h.buf[i]
	}
	return nil
}

// dilated is the Denoiser of DemoFusion's blended local and dilated paths.
type dilated struct {
	local, plain   ugo.Denoiser
	s              int
	weight, alpha2 float64
	sigma, alpha3  float64
	T              int
	// The buffers of the last sample shape, guarded by mu.
	mu                  sync.Mutex
	shape, subShape     []int
	smooth, tmp, kernel []float32
	subX, subEps        *tensor.Dense
	subT                []float32
}

// PredictNoise implements ugo.Denoiser.
func (d *dilated) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := d.local.PredictNoise(ctx, dst, x, t); err != nil {
		return err
	}
	shape := x.Shape()
	if len(t) == 0 || len(shape) != 4 || shape[2]%d.s != 0 || shape[3]%d.s != 0 {
		return &ugo.ShapeError{What: "x", Got: shape.Clone(), Want: fmt.Sprintf("an N,C,H,W sample with H and W divisible by the dilation %d", d.s)}
	}
	// One weight for the batch, from its first timestep (Sample shares one).
	c2 := d.weight * math.Pow(cosineFactor(t[0], d.T), d.alpha2)
	if c2 == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buffers(shape)
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	s := d.s
	src := x.Float32s()
	if d.sigma > 0 {
		c3 := 0.99*math.Pow(cosineFactor(t[0], d.T), d.alpha3) + 0.01
		d.gaussian(d.smooth, src, n, c, h, w, d.sigma*c3)
		src = d.smooth
	}
	sub, ws := d.subX.Float32s(), w/s
	dilatedRows(n, c, h, w, s, func(full, sb int) {
		for xx := range ws {
			sub[sb+xx] = src[full+xx*s]
		}
	})
	ts := t
	if len(t) > 1 {
		for b := range n {
			for k := range s * s {
				d.subT[b*s*s+k] = t[b]
			}
		}
		ts = d.subT
	}
	if err := d.plain.PredictNoise(ctx, d.subEps, d.subX, ts); err != nil {
		return fmt.Errorf("upscale: DemoFusion dilated path: %w", err)
	}
	if !slices.Equal([]int(d.subEps.Shape()), d.subShape) {
		return &ugo.ShapeError{What: "dilated path output", Got: d.subEps.Shape().Clone(), Want: fmt.Sprintf("%v", d.subShape)}
	}
	eps, out := d.subEps.Float32s(), dst.Float32s()
	a, bw := float32(1-c2), float32(c2)
	dilatedRows(n, c, h, w, s, func(full, sb int) {
		for xx, e := range eps[sb : sb+ws] {
			out[full+xx*s] = a*out[full+xx*s] + bw*e
		}
	})
	return ugo.CheckFinite("upscale: DemoFusion prediction", out)
}

// dilatedRows calls row for every row of the dilated path's sub-images.
// Sub-grid (i, j) of image b of an [n, c, h, w] sample is image
// (b*s + i)*s + j of the [n*s*s, c, h/s, w/s] batch; row y of its channel
// ch is the sample's row y*s + i at columns j, j + s, j + 2s, .... full is
// the sample offset of that row's column j and sub the batch offset of the
// sub-image's row: element xx lies at full + xx*s and sub + xx.
func dilatedRows(n, c, h, w, s int, row func(full, sub int)) {
	hs, ws := h/s, w/s
	for b := range n {
		for i := range s {
			for j := range s {
				o := ((b*s+i)*s + j) * c * hs * ws
				for ch := range c {
					for y := range hs {
						row((b*c+ch)*h*w+(y*s+i)*w+j, o+(ch*hs+y)*ws)
					}
				}
			}
		}
	}
}

// buffers (re)allocates the dilated path's buffers when the shape
// changes.
func (d *dilated) buffers(shape tensor.Shape) {
	if slices.Equal(d.shape, shape) {
		return
	}
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	s := d.s
	d.shape = slices.Clone([]int(shape))
	d.smooth = make([]float32, n*c*h*w)
	d.tmp = make([]float32, n*c*h*w)
	d.subShape = []int{n * s * s, c, h / s, w / s}
	d.subX = tensor.New(tensor.WithShape(d.subShape...), tensor.WithBacking(make([]float32, n*c*h*w)))
	d.subEps = tensor.New(tensor.WithShape(d.subShape...), tensor.WithBacking(make([]float32, n*c*h*w)))
	d.subT = make([]float32, n*s*s)
	d.kernel = make([]float32, 2*s-1)
}

// gaussian writes into dst the Gaussian smoothing of x (n images of c
// planes h x w) with a (2s-1)-tap kernel of standard deviation sigma, zero
// padded, renormalised per image to x's mean and standard deviation.
func (d *dilated) gaussian(dst, x []float32, n, c, h, w int, sigma float64) {
	k := d.kernel
	r := len(k) / 2
	var sum float64
	for i := range k {
		u := float64(i - r)
		v := math.Exp(-u * u / (2 * sigma * sigma))
		k[i] = float32(v)
		sum += v
	}
	for i := range k {
		k[i] = float32(float64(k[i]) / sum)
	}
	tmp := d.tmp
	for p := range n * c {
		in, mid, out := x[p*h*w:(p+1)*h*w], tmp[p*h*w:(p+1)*h*w], dst[p*h*w:(p+1)*h*w]
		for y := range h {
			for xx := range w {
				var acc float32
				for t, kv := range k {
					if q := xx + t - r; q >= 0 && q < w {
						acc += kv * in[y*w+q]
					}
				}
				mid[y*w+xx] = acc
			}
		}
		for y := range h {
			for xx := range w {
				var acc float32
				for t, kv := range k {
					if q := y + t - r; q >= 0 && q < h {
						acc += kv * mid[q*w+xx]
					}
				}
				out[y*w+xx] = acc
			}
		}
	}
	per := c * h * w
	for b := range n {
		mx, sx := meanStd(x[b*per : (b+1)*per])
		mg, sg := meanStd(dst[b*per : (b+1)*per])
		if !(sg > 0) {
			copy(dst[b*per:(b+1)*per], x[b*per:(b+1)*per])
			continue
		}
		f := sx / sg
		for i, v := range dst[b*per : (b+1)*per] {
			dst[b*per+i] = float32((float64(v)-mg)*f + mx)
		}
	}
}

// meanStd returns the mean and the unbiased standard deviation of v.
func meanStd(v []float32) (mean, std float64) {
	for _, e := range v {
		mean += float64(e)
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, e := range v {
		d := float64(e) - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}
