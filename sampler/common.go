package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/schedule"
)

// predictionOrDefault returns p with the empty prediction type read as
// schedule.PredictEpsilon.
func predictionOrDefault(p schedule.PredictionType) schedule.PredictionType {
	if p == "" {
		return schedule.PredictEpsilon
	}
	return p
}

// validatePrediction refuses an unknown prediction type.
func validatePrediction(p schedule.PredictionType) error {
	switch predictionOrDefault(p) {
	case schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample:
		return nil
	case schedule.PredictFlow:
		return fmt.Errorf("sampler: prediction type %q is a rectified-flow velocity: sample it with FlowMatchEuler", string(p))
	}
	return fmt.Errorf("sampler: unknown prediction type %q, want %q, %q or %q", string(p), schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample)
}

// ErrNonFinite is wrapped by the error Sample returns when a model output,
// a step's result or the sample it starts from holds a NaN or an infinity.
// It is ugo.ErrNonFinite, so errors.Is matches the non-finite errors of
// every package, the onnx backend's included.
var ErrNonFinite = ugo.ErrNonFinite

// discreteScheduler is diffusers' set_timesteps + step form over integer
// training timesteps, which DDIM and DDPM implement with their exported
// methods and build their Solver methods on.
type discreteScheduler interface {
	// Timesteps returns the descending training timesteps of an n-step
	// run (diffusers' set_timesteps).
	Timesteps(n int) ([]int, error)
	// PrevTimestep returns the timestep that a step from t lands on in an
	// n-step run; a negative value means the step produces the final
	// sample.
	PrevTimestep(t, n int) int
	// NeedsNoise reports whether Step at timestep t consumes a vector of
	// standard normal noise (StepInput.Noise).
	NeedsNoise(t int) bool
	// Step writes the sample at in.Prev into dst, from the model output at
	// in.Timestep. dst may alias in.Sample.
	Step(dst []float32, in StepInput) error
	// AddNoise writes the forward-process sample
	// sqrt(abar_t) x0 + sqrt(1-abar_t) noise into dst, which may alias x0
	// or noise (diffusers' add_noise).
	AddNoise(dst, x0, noise []float32, t int) error
}

// StepInput holds the arguments of a step (Solver.StepAt, and DDIM.Step
// and DDPM.Step, which read Timestep and Prev). All slices are read-only
// except X0 and Scratch, and none is retained.
type StepInput struct {
	// Timestep is the current training timestep t, and Prev the one being
	// stepped to (negative for the final step); see PrevTimestep.
	Timestep, Prev int
	// ModelOutput is the model's prediction at (Sample, Timestep), read
	// according to the scheduler's PredictionType.
	ModelOutput []float32
	// Sample is x_t. It has the length of ModelOutput and dst.
	Sample []float32
	// Noise is standard normal noise of the same length, required when
	// NeedsNoise(Timestep) and ignored otherwise.
	Noise []float32
	// X0, if not nil, receives the predicted clean sample after clipping
	// or thresholding. Its length must match Sample.
	X0 []float32
	// Batch is the number of batch elements in Sample. Dynamic
	// thresholding works per element; 0 means 1.
	Batch int
	// Scratch is an optional workspace of at least len(Sample)/Batch
	// values used by dynamic thresholding. When thresholding is on and
	// X0 or Scratch is missing, Step allocates.
	Scratch []float32
	// PrevX0 is the history of multistep solvers (Trajectory.Multistep): the
	// X0 that the previous step of the run wrote, or nil when there is
	// none (the first step, an img2img start, a resume without it). It
	// must not alias X0. DDIM.Step and DDPM.Step ignore it.
	PrevX0 []float32
	// State holds the Trajectory.State buffers of the run (each of the
	// sample's length), which the solver reads and writes as its own
	// across steps; it may also swap the buffers within the slice. A run
	// allocates them once and passes the same slice at every step.
	// StateSteps is the number of steps of the run before this one that
	// were given this State: 0 at the first step, after an img2img start
	// or a resume, where the solver starts its history afresh.
	State      [][]float32
	StateSteps int
	// X0Hook, if not nil, is called once by the step with the predicted
	// clean sample of every element, before the solver's clipping or
	// thresholding and before the step uses it; it may edit x0 in place
	// (see Hook for what each solver then reads). The step returns its
	// error as it is. Sample sets it from Options.Hook.
	X0Hook func(x0 []float32) error
}

func (in *StepInput) check(T int, needNoise bool) error {
	n := len(in.Sample)
	if n == 0 {
		return errors.New("sampler: step: empty sample")
	}
	if len(in.ModelOutput) != n {
		return fmt.Errorf("sampler: step: model output has %d values, sample has %d", len(in.ModelOutput), n)
	}
	if in.X0 != nil && len(in.X0) != n {
		return fmt.Errorf("sampler: step: X0 has %d values, sample has %d", len(in.X0), n)
	}
	if needNoise && len(in.Noise) != n {
		return fmt.Errorf("sampler: step at timestep %d needs %d noise values, got %d", in.Timestep, n, len(in.Noise))
	}
	if in.Timestep < 0 || in.Timestep >= T {
		return fmt.Errorf("sampler: step: timestep %d outside the schedule [0, %d)", in.Timestep, T)
	}
	if in.Prev >= in.Timestep {
		return fmt.Errorf("sampler: step: previous timestep %d not below timestep %d", in.Prev, in.Timestep)
	}
	if b := in.batch(); b < 0 || n%b != 0 {
		return fmt.Errorf("sampler: step: %d values do not split into a batch of %d", n, in.Batch)
	}
	return nil
}

func (in *StepInput) batch() int {
	if in.Batch == 0 {
		return 1
	}
	return in.Batch
}

// Threshold is diffusers' dynamic thresholding of the predicted clean
// sample x0, which DDIM, DDPM, DPMSolverMultistep and UniPC embed. When
// Thresholding is set, per batch element, s is the DynamicThresholdingRatio
// quantile of |x0| (0 means 0.995) clamped to [1, SampleMaxValue] (0 means
// 1), and x0 becomes clamp(x0, -s, s)/s.
type Threshold struct {
	Thresholding             bool
	DynamicThresholdingRatio float32
	SampleMaxValue           float32
}

// Clip is the post-processing of the predicted clean sample x0 of DDIM
// and DDPM: ClipSample clamps x0 to [-ClipSampleRange, ClipSampleRange]
// (0 means 1), unless the embedded Threshold's Thresholding is set, which
// then replaces it. diffusers' default for clip_sample is true, but latent
// models configure it false.
type Clip struct {
	ClipSample      bool
	ClipSampleRange float32
	Threshold
}

// clipFromConfig returns the Clip of a scheduler configuration.
func clipFromConfig(cfg *schedule.Config) Clip {
	return Clip{ClipSample: cfg.ClipSample, ClipSampleRange: cfg.ClipSampleRange, Threshold: thresholdFromConfig(cfg)}
}

// thresholdFromConfig returns the Threshold of a scheduler configuration.
func thresholdFromConfig(cfg *schedule.Config) Threshold {
	return Threshold{Thresholding: cfg.Thresholding, DynamicThresholdingRatio: cfg.DynamicThresholdingRatio, SampleMaxValue: cfg.SampleMaxValue}
}

// resolve validates c and returns it with its defaults filled in.
func (c Clip) resolve() (clipping, error) {
	return newClipping(c.ClipSample, c.ClipSampleRange, c.Thresholding, c.DynamicThresholdingRatio, c.SampleMaxValue)
}

// resolve validates t and returns it with its defaults filled in.
func (t Threshold) resolve() (clipping, error) {
	return newClipping(false, 0, t.Thresholding, t.DynamicThresholdingRatio, t.SampleMaxValue)
}

// clipping holds the resolved x0 post-processing of a Clip or Threshold:
// diffusers' thresholding (which takes precedence) or clip_sample.
type clipping struct {
	clip      bool
	clipRange float32
	threshold bool
	ratio     float32
	maxValue  float32
}

func newClipping(clip bool, clipRange float32, threshold bool, ratio, maxValue float32) (clipping, error) {
	c := clipping{clip: clip, clipRange: clipRange, threshold: threshold, ratio: ratio, maxValue: maxValue}
	if c.clipRange == 0 {
		c.clipRange = 1
	}
	if c.ratio == 0 {
		c.ratio = 0.995
	}
	if c.maxValue == 0 {
		c.maxValue = 1
	}
	if clip && !(c.clipRange > 0 && c.clipRange <= math.MaxFloat32) {
		return c, fmt.Errorf("sampler: clip sample range %v, want a positive finite number", clipRange)
	}
	if threshold {
		if !(c.ratio > 0 && c.ratio <= 1) {
			return c, fmt.Errorf("sampler: dynamic thresholding ratio %v, want a number in (0, 1]", ratio)
		}
		// A maximum below 1 is allowed, as in diffusers: torch.clamp(s,
		// min=1, max=m) with m < 1 gives s = m for every sample.
		if !(c.maxValue > 0 && c.maxValue <= math.MaxFloat32) {
			return c, fmt.Errorf("sampler: sample max value %v, want a positive finite number", maxValue)
		}
	}
	return c, nil
}

// x0Map turns a model output m at sample x into the predicted clean sample,
// for a sample x = a x0 + s eps at one noise level.
type x0Map struct {
	pred schedule.PredictionType
	a, s float32
}

// at returns the predicted clean sample for output m at sample x.
func (p x0Map) at(m, x float32) float32 {
	switch p.pred {
	case schedule.PredictV:
		return float32(p.a*x) - float32(p.s*m)
	case schedule.PredictSample:
		return m
	default:
		return (x - float32(p.s*m)) / p.a
	}
}

// thresholdX0 prepares the predicted clean samples of a step under
// dynamic thresholding or an X0 hook: it fills x0buf (allocated when nil)
// with every element's prediction, runs the hook on it, then thresholds
// per batch element or clips element by element. Otherwise it returns
// x0buf as it is, and x0At converts and clamps element by element.
func (c *clipping) thresholdX0(x0buf []float32, p x0Map, in StepInput) ([]float32, error) {
	if !c.threshold && in.X0Hook == nil {
		return x0buf, nil
	}
	m, x := in.ModelOutput, in.Sample
	if x0buf == nil {
		x0buf = make([]float32, len(x))
	}
	for i := range x {
		x0buf[i] = p.at(m[i], x[i])
	}
	if err := in.callX0(x0buf); err != nil {
		return nil, err
	}
	c.post(x0buf, in)
	return x0buf, nil
}

// post applies dynamic thresholding or clip_sample to a whole x0 buffer.
func (c *clipping) post(x0 []float32, in StepInput) {
	switch {
	case c.threshold:
		c.thresholdAll(x0, in.batch(), in.Scratch)
	case c.clip:
		for i, v := range x0 {
			x0[i] = c.clamp(v)
		}
	}
}

// x0At returns element i's predicted clean sample after clip_sample or
// dynamic thresholding (already applied by thresholdX0, with the hook),
// storing it in x0buf when that is not nil.
func (c *clipping) x0At(x0buf []float32, p x0Map, in StepInput, i int) float32 {
	if c.threshold || in.X0Hook != nil {
		return x0buf[i]
	}
	x0 := c.clamp(p.at(in.ModelOutput[i], in.Sample[i]))
	if x0buf != nil {
		x0buf[i] = x0
	}
	return x0
}

// clamp applies clip_sample to one value (when thresholding is off).
func (c *clipping) clamp(v float32) float32 {
	if !c.clip || c.threshold {
		return v
	}
	return min(max(v, -c.clipRange), c.clipRange)
}

// thresholdAll applies dynamic thresholding (Imagen, arXiv 2205.11487) to
// x0 in place, per batch element, as diffusers' _threshold_sample: s is the
// ratio-quantile of |x0| (torch.quantile, linear interpolation), clamped to
// [1, maxValue]; x0 becomes clamp(x0, -s, s) / s.
func (c *clipping) thresholdAll(x0 []float32, batch int, scratch []float32) {
	m := len(x0) / batch
	if len(scratch) < m {
		scratch = make([]float32, m)
	}
	scratch = scratch[:m]
	for b := range batch {
		seg := x0[b*m : (b+1)*m]
		for i, v := range seg {
			scratch[i] = float32(math.Abs(float64(v)))
		}
		s := quantile32(scratch, c.ratio)
		s = min(max(s, 1), c.maxValue)
		for i, v := range seg {
			seg[i] = min(max(v, -s), s) / s
		}
	}
}

// quantile32 returns the q-quantile of v as torch.quantile does in float32
// (linear interpolation between the order statistics around q*(n-1)). It
// reorders v.
func quantile32(v []float32, q float32) float32 {
	rank := q * float32(len(v)-1)
	lo := int(rank)
	w := rank - float32(lo)
	below := selectKth(v, lo)
	if w == 0 || lo+1 >= len(v) {
		return below
	}
	above := v[lo+1]
	for _, x := range v[lo+2:] {
		above = min(above, x)
	}
	// torch's lerp.
	if w < 0.5 {
		return below + w*(above-below)
	}
	return above - (above-below)*(1-w)
}

// selectKth partially sorts v so that v[k] is the k-th smallest value, every
// value before it is <= v[k] and every value after it is >= v[k]; it returns
// v[k]. Values must not be NaN.
func selectKth(v []float32, k int) float32 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		// Median of three as pivot.
		mid := lo + (hi-lo)/2
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for v[j] > pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}

// sqrt32 is torch's float32 pow(x, 0.5): a correctly rounded square root.
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// addNoise is diffusers' add_noise for one alphas_cumprod value, in float32.
func addNoise(dst, x0, noise []float32, abar float32) error {
	if len(x0) != len(dst) || len(noise) != len(dst) {
		return fmt.Errorf("sampler: add noise: lengths %d (dst), %d (x0), %d (noise) differ", len(dst), len(x0), len(noise))
	}
	sa := sqrt32(abar)
	sb := sqrt32(1 - abar)
	for i := range dst {
		dst[i] = float32(sa*x0[i]) + float32(sb*noise[i])
	}
	return nil
}

// checkTimesteps verifies that a timestep list fits a schedule of T steps.
func checkTimesteps(ts []int, T, n int) error {
	if len(ts) != n {
		return fmt.Errorf("sampler: got %d timesteps for %d steps", len(ts), n)
	}
	for i, t := range ts {
		if t < 0 || t >= T {
			return fmt.Errorf("sampler: timestep %d (%d of %d) outside the schedule [0, %d); check steps_offset", t, i, n, T)
		}
		if i > 0 && t >= ts[i-1] {
			return fmt.Errorf("sampler: timesteps not strictly descending at %d: %v", i, ts)
		}
	}
	return nil
}

// abarAt returns alphas_cumprod[t] without copying the table: AlphaBar is
// exact at integer times.
func abarAt(s *schedule.Schedule, t int) float32 { return float32(s.AlphaBar(float64(t))) }

// The helpers below are what DDIM and DDPM, diffusers' discrete-timestep
// schedulers, share beyond clipping.

// checkDiscrete validates the fields DDIM, DDPM and PNDM (name) share
// after the schedule, their own and their Clip: the steps offset and the
// prediction type.
func checkDiscrete(name string, offset int, pred schedule.PredictionType) error {
	if offset < 0 {
		return fmt.Errorf("sampler: %s steps offset %d, want >= 0", name, offset)
	}
	return validatePrediction(pred)
}

func spacingOrDefault(s schedule.Spacing) schedule.Spacing {
	if s == "" {
		return schedule.Leading
	}
	return s
}

// discreteTimesteps returns the n descending timesteps of an n-step run on
// s, as diffusers' set_timesteps(n) for the spacing ("" = schedule.Leading)
// and offset.
func discreteTimesteps(s *schedule.Schedule, n int, sp schedule.Spacing, offset int) ([]int, error) {
	T := s.Len()
	if n <= 0 || n > T {
		return nil, fmt.Errorf("sampler: %d inference steps, want 1..%d (the training steps)", n, T)
	}
	ts, err := schedule.Timesteps(T, n, spacingOrDefault(sp), offset)
	if err != nil {
		return nil, err
	}
	if err := checkTimesteps(ts, T, n); err != nil {
		return nil, err
	}
	return ts, nil
}

// prevTimestep returns t - T/n (integer division), diffusers' rule, or -1
// for n <= 0.
func prevTimestep(s *schedule.Schedule, t, n int) int {
	if n <= 0 {
		return -1
	}
	return t - s.Len()/n
}

// checkStepDst reports a step destination whose length is not the sample's.
func checkStepDst(dst []float32, in *StepInput) error {
	if len(dst) != len(in.Sample) {
		return fmt.Errorf("sampler: step: dst has %d values, sample has %d", len(dst), len(in.Sample))
	}
	return nil
}

// addNoiseAt writes sqrt(abar_t) x0 + sqrt(1-abar_t) noise into dst for the
// training timestep t of s.
func addNoiseAt(s *schedule.Schedule, dst, x0, noise []float32, t int) error {
	T := s.Len()
	if t < 0 || t >= T {
		return fmt.Errorf("sampler: add noise at timestep %d outside the schedule [0, %d)", t, T)
	}
	return addNoise(dst, x0, noise, abarAt(s, t))
}
