package guidance

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/modelcall"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/schedule"
)

// UpsampleOptions configures Upsample. The zero value is valid but turns
// guidance off (Theta and Eta are 0); start from DefaultUpsampleOptions.
type UpsampleOptions struct {
	// Factors are the integer upsampling factors of the trailing axes,
	// relative to the resolution the model was trained at: [fH, fW] for the
	// H and W axes of images (and of video, frame axis untouched), or
	// [fF, fH, fW] for video (rank-5 N,C,F,H,W samples), where fF
	// upsamples time. Unequal factors are fine: [1, 2] for a panorama twice
	// as wide, [2, 1, 1] for twice as many frames. nil means [2, 2] for
	// Upsample; packages pipeline and upscale derive nil factors from the
	// requested size and the training size.
	// Every factor must be at least 1; the sample's axes must be divisible
	// by them.
	Factors []int
	// Theta is the guidance scale w_t while guidance is on. 1 applies the
	// full correction; 0 disables guidance. Public implementations use 1,
	// and 1.2 for Stable Diffusion 1.5 at 1024^2.
	Theta float64
	// Eta, in [0, 1], is the fraction of the schedule, from the noisy end,
	// during which guidance is on: w_t = Theta when t >= (1-Eta)*T, where T
	// is the schedule's number of training steps, and 0 otherwise. 1 keeps
	// guidance on throughout; latent models use 0.3 to 0.6.
	Eta float64
	// TimeMatching chooses how the SNR-matched time tau of the
	// low-resolution call is found: schedule.Continuous (fractional tau) or
	// schedule.Nearest (the closest training step, as the public
	// implementations do).
	TimeMatching schedule.TimeMatching
	// NoTimeAdjustment evaluates the low-resolution call at t instead of
	// the SNR-matched tau (an ablation).
	NoTimeAdjustment bool
	// NoPowerAdjustment feeds D(x_t) to the low-resolution call without
	// dividing by sqrt(P_t) (an ablation).
	NoPowerAdjustment bool
	// Sequential and Concurrent choose how the two model calls of a guided
	// step are scheduled; the result is the same bit for bit. Sequential
	// runs the low-resolution call after the high-resolution one, on the
	// caller's goroutine; Concurrent runs them at the same time. Setting
	// both is an error. With neither set (the default), Upsample asks the
	// model: calls run one after the other when ugo.FillsCPU(model)
	// reports that one call already keeps every core busy (an onnx.Model
	// on the CPU with a thread per core), where two calls at once only
	// contend for the cores, and concurrently otherwise (a model that says
	// nothing, one thread per call, a GPU), where the second call uses
	// cores the first leaves idle. examples/bench measures each.
	Sequential bool
	Concurrent bool
	// Prediction says what the model predicts, as diffusers'
	// prediction_type: schedule.PredictEpsilon (the noise, the
	// ugo.Denoiser contract; "" means this), schedule.PredictV (the
	// velocity v = sqrt(abar_t) eps - sqrt(1-abar_t) x0, SD 2.x 768-v
	// models) or schedule.PredictSample (the clean sample x0). The
	// guidance term is defined on the noise: the model's outputs at both
	// resolutions are read as the noise they imply (with abar_t at the
	// high resolution and abar_tau at the low one), guided, and the
	// returned prediction is of the same type as the model's. The
	// returned Denoiser then outputs what the model outputs: pass it to a
	// sampler configured with the same prediction type.
	//
	// schedule.PredictFlow is a rectified-flow model (SD3, FLUX): x_s =
	// (1-s) x0 + s eps, called at the timestep t = T s with T the
	// schedule's length, predicting v = eps - x0 (package sampler's
	// FlowMatchEuler samples it). Its low-resolution call runs at tau =
	// s/(s + sqrt(k)(1-s)) on c D(x_s), c = (1-tau)/(1-s); see the package
	// documentation.
	Prediction schedule.PredictionType
}

// DefaultUpsampleOptions returns the options of the paper's pixel-space
// setting: 2x2 upsampling, Theta 1, guidance on throughout (Eta 1),
// continuous time matching, both adjustments on.
func DefaultUpsampleOptions() UpsampleOptions {
	return UpsampleOptions{Factors: []int{2, 2}, Theta: 1, Eta: 1, TimeMatching: schedule.Continuous}
}

// LatentUpsampleOptions returns the options the public implementations use
// for latent models (Stable Diffusion 1.5 at 1024x1024): Theta 1.2, Eta 0.6
// (guidance on the noisiest 60% of the schedule), continuous time matching,
// both adjustments on. Factors is nil: [2, 2] for Upsample, the factors
// derived from the requested size for package pipeline. The same values
// serve 3x and 4x, where they have not been tuned.
func LatentUpsampleOptions() UpsampleOptions {
	return UpsampleOptions{Theta: 1.2, Eta: 0.6, TimeMatching: schedule.Continuous}
}

// Validate reports options that Upsample refuses: factors outside [1,
// 65536] or more than three of them, a Theta that is not a finite float32,
// an Eta outside [0, 1], an unknown TimeMatching or Prediction,
// Sequential and Concurrent both set. nil Factors are valid (their meaning
// is the caller's: [2, 2] for Upsample). Options are refused even where
// guidance would not apply (Theta 0).
func (o UpsampleOptions) Validate() error {
	if o.Factors != nil {
		if len(o.Factors) < 1 || len(o.Factors) > 3 {
			return fmt.Errorf("guidance: Upsample: %d factors %v, want 2 ([fH, fW]) or 3 ([fF, fH, fW]), or 1 ([fW])", len(o.Factors), o.Factors)
		}
		for _, f := range o.Factors {
			if f < 1 || f > maxFactor {
				return fmt.Errorf("guidance: Upsample: factors %v: every factor must be at least 1 and at most %d", o.Factors, maxFactor)
			}
		}
	}
	if !(math.Abs(o.Theta) <= math.MaxFloat32) {
		return fmt.Errorf("guidance: Upsample: Theta is %v, want a finite float32 number", o.Theta)
	}
	if !(o.Eta >= 0 && o.Eta <= 1) {
		return fmt.Errorf("guidance: Upsample: Eta is %v, want a value in [0, 1]", o.Eta)
	}
	if o.TimeMatching != schedule.Continuous && o.TimeMatching != schedule.Nearest {
		return fmt.Errorf("guidance: Upsample: unknown TimeMatching %d", int(o.TimeMatching))
	}
	if o.Sequential && o.Concurrent {
		return errors.New("guidance: Upsample: Sequential and Concurrent are both set; set one, or neither to let the model decide")
	}
	return checkPrediction(o.Prediction)
}

// Active reports whether guidance is on at timestep t of a schedule of
// trainSteps training steps (schedule.Schedule.Len): Theta is not 0 and
// t >= (1-Eta)*trainSteps. Where it is off, w_t = 0 and Upsample skips the
// low-resolution call.
func (o UpsampleOptions) Active(t float64, trainSteps int) bool {
	return o.Theta != 0 && t >= (1-o.Eta)*float64(trainSteps)
}

// upsampler is the Denoiser returned by Upsample.
type upsampler struct {
	model   ugo.Denoiser // the high-resolution call
	low     ugo.Denoiser // the low-resolution call
	s       *schedule.Schedule
	factors []int
	k       float64
	opts    UpsampleOptions
	param   parameterization
	eps     bool // the model predicts the noise: no conversion

	// forceGuide disables the k = 1 shortcut (tests only).
	forceGuide bool

	work modelcall.FreeList[*upWork]
}

// upWork holds the buffers of one guided call for one sample shape.
type upWork struct {
	plan    resample.Pooling // for one batch element
	lowX    *tensor.Dense    // D(x_t)/sqrt(P_t), whole batch
	lowEps  *tensor.Dense    // eps(lowX, tau), whole batch
	scratch []float32        // D(eps) of one batch element
	poolX   []float32        // D(x_t) of one batch element
	tau     []float32
	call    modelcall.Call
	lowCtx  ugo.RegionContext // the low-resolution call's context
}

// Upsample returns a Denoiser that applies Upsample Guidance (Hwang, Park
// and Jo, arXiv 2404.01709) to model, trained at a lower resolution, for
// samples opts.Factors times larger than that resolution. s is the
// schedule the model was trained with; for a rectified-flow model
// (opts.Prediction schedule.PredictFlow) only its length T is read, the
// timestep scale t = T s (num_train_timesteps, 1000 for SD3 and FLUX).
// model predicts the noise unless
// opts.Prediction says it predicts the velocity or the clean sample; the
// formula below is then applied to the noise its outputs imply, and the
// result is returned in the model's own type (see the package
// documentation).
//
// For a sample x_t it computes, per batch element,
//
//	eps~ = eps(x_t, t) + w_t * U( eps(D(x_t)/sqrt(P_t), tau) / sqrt(k)  -  D(eps(x_t, t)) )
//
// where D is average pooling and U nearest repetition by the factors, k
// their product, tau the time with SNR(tau) = k*SNR(t) and P_t = abar_t +
// (1-abar_t)/k (see the package documentation). The two model calls run
// concurrently or one after the other, as opts.Sequential and
// opts.Concurrent say, or as the model says (ugo.FillsCPU) when neither is
// set. When w_t = 0 for the whole batch (Theta = 0, or t outside
// the Eta window), or k = 1, the result is model's own prediction, bit for
// bit, and the low-resolution call is skipped. Otherwise the low-resolution
// call covers the whole batch, even elements whose w_t is 0.
//
// Upsample returns an error for a nil model or schedule and for invalid
// options. The returned Denoiser is safe for concurrent use when model is;
// it keeps one set of buffers per sample shape and concurrent caller, and
// allocates nothing per call once they exist. It returns an error (a
// *ugo.ShapeError) for samples whose axes are not divisible by the
// factors, or whose rank the factors do not fit.
func Upsample(model ugo.Denoiser, s *schedule.Schedule, opts UpsampleOptions) (ugo.Denoiser, error) {
	return UpsampleHighLow(model, model, s, opts)
}

// UpsampleHighLow is Upsample with separate models for the two calls: high
// predicts at the sample's resolution (eps(x_t, t) in the formula of
// Upsample) and low on the pooled sample (eps(D(x_t)/sqrt(P_t), tau)). Both
// must be the same network, predicting what opts.Prediction says; they
// differ in how it runs. The usual pair is a tiled model for the
// high-resolution call (package tiling: a network run on tiles of its
// training size, for memory that does not grow with the output, or an
// export with static spatial axes) and the plain model for the
// low-resolution one, whose input is at the training size. With high ==
// low it is Upsample, bit for bit.
func UpsampleHighLow(high, low ugo.Denoiser, s *schedule.Schedule, opts UpsampleOptions) (ugo.Denoiser, error) {
	if ugo.IsNil(high) {
		return nil, fmt.Errorf("guidance: Upsample: nil model: %w", ugo.ErrNilDenoiser)
	}
	if ugo.IsNil(low) {
		return nil, fmt.Errorf("guidance: Upsample: nil low-resolution model: %w", ugo.ErrNilDenoiser)
	}
	if s == nil {
		return nil, errors.New("guidance: Upsample: nil schedule")
	}
	if s.Len() == 0 {
		return nil, errors.New("guidance: Upsample: empty schedule (a zero schedule.Schedule; build one with schedule.FromConfig, FromBetas or a named constructor)")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	factors := opts.Factors
	if factors == nil {
		factors = []int{2, 2}
	}
	k := 1
	for _, f := range factors {
		k *= f
	}
	opts.Factors = append([]int(nil), factors...)
	var param parameterization = vp{s: s, pred: opts.Prediction, k: float64(k), mode: opts.TimeMatching}
	if opts.Prediction == schedule.PredictFlow {
		param = flow{T: float64(s.Len()), k: float64(k), mode: opts.TimeMatching,
			exact: !opts.NoTimeAdjustment && !opts.NoPowerAdjustment}
	}
	return &upsampler{
		model:   high,
		low:     low,
		s:       s,
		factors: opts.Factors,
		k:       float64(k),
		opts:    opts,
		param:   param,
		eps:     opts.Prediction == "" || opts.Prediction == schedule.PredictEpsilon,
	}, nil
}

// maxFactor bounds each upsampling factor (so that their product fits any
// int); a factor must divide its axis anyway.
const maxFactor = 1 << 16

// sequential reports whether the two model calls of a step run one after
// the other.
func (u *upsampler) sequential() bool {
	if u.opts.Sequential || u.opts.Concurrent {
		return u.opts.Sequential
	}
	return ugo.FillsCPU(u.model)
}

// FillsCPU implements ugo.CPUFiller: a guided model fills the CPU when the
// model it wraps does.
func (u *upsampler) FillsCPU() bool { return ugo.FillsCPU(u.model) }

// weight returns w_t for timestep t.
func (u *upsampler) weight(t float32) float64 {
	if u.opts.Active(float64(t), u.s.Len()) {
		return u.opts.Theta
	}
	return 0
}

// PredictNoise implements ugo.Denoiser.
func (u *upsampler) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	shape, err := checkCall(dst, x, t)
	if err != nil {
		return err
	}
	if len(u.factors) > len(shape)-2 {
		return &ugo.ShapeError{What: "x", Got: shape, Want: fmt.Sprintf("rank 5 (N,C,F,H,W) for the %d upsample factors %v", len(u.factors), u.factors)}
	}
	if err := u.checkDivisible(shape); err != nil {
		return err
	}
	active := false
	for i := range len(t) {
		if u.weight(t[i]) != 0 {
			active = true
			break
		}
	}
	if !active || (u.k == 1 && !u.forceGuide) {
		return u.model.PredictNoise(ctx, dst, x, t)
	}

	if err := ctx.Err(); err != nil {
		return err
	}
	ws, err := u.workspace(shape)
	if err != nil {
		return err
	}
	defer u.work.Put(shape, ws)

	// The low-resolution input and times, per batch element.
	n := shape[0]
	hi, lo := ws.plan.HighLen(), ws.plan.LowLen()
	xs, lowX := x.Float32s(), ws.lowX.Float32s()
	tau := ws.tau[:len(t)]
	for i := range tau {
		tau[i] = u.matchedTime(t[i])
	}
	for b := range n {
		ws.plan.Pool(lowX[b*lo:(b+1)*lo], xs[b*hi:(b+1)*hi], u.lowScale(ugo.TimestepAt(t, b)))
	}

	// The low-resolution call covers what the high-resolution one covers,
	// downscaled by the spatial factors.
	h, w := shape[len(shape)-2], shape[len(shape)-1]
	fh, fw := u.spatialFactors()
	ws.lowCtx.Context = ctx
	ws.lowCtx.Region = ugo.RegionOf(ctx, h, w).Downscaled(fh, fw)
	defer func() { ws.lowCtx.Context = nil }()

	// Both model calls, one after the other or concurrently.
	var errHigh, errLow error
	if u.sequential() {
		errHigh = u.model.PredictNoise(ctx, dst, x, t)
		if errHigh == nil {
			errLow = u.low.PredictNoise(&ws.lowCtx, ws.lowEps, ws.lowX, tau)
		}
	} else {
		c := &ws.call
		c.Ctx, c.Model, c.Dst, c.X, c.T = &ws.lowCtx, u.low, ws.lowEps, ws.lowX, tau
		c.Start()
		errHigh = u.model.PredictNoise(ctx, dst, x, t)
		errLow = c.Wait()
	}
	if errHigh != nil {
		return errHigh
	}
	if errLow != nil {
		return fmt.Errorf("guidance: low-resolution model call: %w", errLow)
	}

	// dst += w_t * U(eps_low/sqrt(k) - D(dst)), per batch element.
	ds, lowEps := dst.Float32s(), ws.lowEps.Float32s()
	invSqrtK := float32(1 / math.Sqrt(u.k))
	for b := range n {
		tb := ugo.TimestepAt(t, b)
		w := u.weight(tb)
		if w == 0 {
			continue
		}
		d, xb := ds[b*hi:(b+1)*hi], xs[b*hi:(b+1)*hi]
		g := ws.scratch
		if u.eps {
			ws.plan.Pool(g, d, 1)
			for i, e := range lowEps[b*lo : (b+1)*lo] {
				g[i] = e*invSqrtK - g[i]
			}
			ws.plan.AddRepeated(d, g, float32(w))
		} else {
			u.guideConverted(ws, d, xb, lowEps[b*lo:(b+1)*lo], lowX[b*lo:(b+1)*lo], tb, ugo.TimestepAt(tau, b), w)
		}
	}
	if ugo.FirstNonFinite(ds) >= 0 {
		return ugo.CheckFinite("guidance: Upsample: guided prediction", ds)
	}
	return nil
}

// guideConverted adds the guidance term to the output d of a model that
// does not predict the noise (one batch element, in place): with eps =
// A m + B x at each resolution,
//
//	m~ = m + (w/A_t) U( (A_tau m_low + B_tau x~)/sqrt(k) - (A_t D(m) + B_t D(x)) )
//
// which is the output whose implied noise is the guided eps~. It reports
// false, leaving d alone, where an output does not determine the noise
// (v at abar = 0, x0 at abar = 1).
func (u *upsampler) guideConverted(ws *upWork, d, x, lowOut, lowX []float32, t, tau float32, w float64) bool {
	if f, isFlow := u.param.(flow); isFlow {
		return u.guideFlow(f, ws, d, x, lowOut, t, tau, w)
	}
	hc, ok := u.param.at(float64(t))
	if !ok {
		return false
	}
	lc, ok := u.param.at(float64(tau))
	if !ok {
		return false
	}
	g, dx := ws.scratch, ws.poolX
	ws.plan.Pool(g, d, 1)
	ws.plan.Pool(dx, x, 1)
	invSqrtK := 1 / math.Sqrt(u.k)
	la, lb := float32(lc.epsM*invSqrtK), float32(lc.epsX*invSqrtK)
	ha, hb := float32(hc.epsM), float32(hc.epsX)
	for i, m := range lowOut {
		g[i] = (la*m + lb*lowX[i]) - (ha*g[i] + hb*dx[i])
	}
	ws.plan.AddRepeated(d, g, float32(w/hc.epsM))
	return true
}

// guideFlow adds the guidance term to the velocity d of a rectified-flow
// model (one batch element, in place), in the form of flow.term, which
// needs D(x) rather than the low-resolution input.
func (u *upsampler) guideFlow(f flow, ws *upWork, d, x, lowOut []float32, t, tau float32, w float64) bool {
	a, b, ok := f.term(float64(t), float64(tau), float64(u.lowScale(t)))
	if !ok {
		return false
	}
	g, dx := ws.scratch, ws.poolX
	ws.plan.Pool(g, d, 1)
	ws.plan.Pool(dx, x, 1)
	a32, b32 := float32(a), float32(b)
	for i, m := range lowOut {
		g[i] = (a32*m + b32*dx[i]) - g[i]
	}
	ws.plan.AddRepeated(d, g, float32(w))
	return true
}

// matchedTime returns tau for t.
func (u *upsampler) matchedTime(t float32) float32 {
	if u.opts.NoTimeAdjustment {
		return t
	}
	return float32(u.param.matched(float64(t)))
}

// lowScale returns the factor applied to D(x_t): 1/sqrt(P_t), or c for a
// flow model.
func (u *upsampler) lowScale(t float32) float32 {
	if u.opts.NoPowerAdjustment {
		return 1
	}
	return float32(u.param.scale(float64(t)))
}

// spatialFactors returns the factors of the H and W axes (1 for an axis
// without one).
func (u *upsampler) spatialFactors() (fh, fw int) {
	n := len(u.factors)
	fh, fw = 1, u.factors[n-1]
	if n >= 2 {
		fh = u.factors[n-2]
	}
	return fh, fw
}

// axisNames names the axes factors can apply to.
var axisNames = []string{"F", "H", "W"}

// checkDivisible reports a sample whose guided axes are not divisible by
// their factors.
func (u *upsampler) checkDivisible(shape []int) error {
	off := len(shape) - len(u.factors)
	names := axisNames[3-len(u.factors):]
	for i, f := range u.factors {
		if shape[off+i]%f != 0 {
			return &ugo.ShapeError{What: "x", Got: shape, Want: fmt.Sprintf(
				"axis %s (size %d) divisible by its upsample factor %d (factors %v apply to axes %v)",
				names[i], shape[off+i], f, u.factors, names)}
		}
	}
	return nil
}

// workspace returns buffers for shape, reusing a free set when there is one.
func (u *upsampler) workspace(shape []int) (*upWork, error) {
	if ws, ok := u.work.Get(shape); ok {
		return ws, nil
	}
	one := append([]int{1}, shape[1:]...)
	plan, err := resample.NewPooling(one, u.factors)
	if err != nil {
		return nil, &ugo.ShapeError{What: "x", Got: shape, Want: err.Error()}
	}
	low := plan.LowShape(nil, len(shape), shape[0], shape[1])
	// Two low-resolution tensors and two low-resolution vectors of one
	// batch element.
	need := ugo.TensorBytes(2, low...) + ugo.TensorBytes(2, plan.LowLen())
	if need < 0 || need > ugo.MemoryLimit() {
		return nil, ugo.CheckMemory(fmt.Sprintf("guidance: Upsample: the workspace of a %v sample", shape), need)
	}
	return &upWork{
		plan:    plan,
		lowX:    newTensor(low),
		lowEps:  newTensor(low),
		scratch: make([]float32, plan.LowLen()),
		poolX:   make([]float32, plan.LowLen()),
		tau:     make([]float32, shape[0]),
	}, nil
}
