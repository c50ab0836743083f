package guidance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/lowpass"
	"github.com/ugo-diffusion/ugo/schedule"
)

// StructureOptions configures StructureGuidance.
type StructureOptions struct {
	// Cutoff is the sf of the low-pass LP: antialiased bilinear down by
	// sf, bilinear back up (upscale.LowPass); 0 means 0.25
	// (upscale.DefaultCutoff).
	Cutoff float64
	// Weight is the peak guidance weight, gamma at From; 0 means 1.
	Weight float64
	// From and To are the timesteps over which gamma_t falls linearly
	// from Weight (at t >= From) to 0 (at t <= To); From >= To. Refine
	// (package upscale) sets them to the first and last timestep of the
	// restarted steps.
	// With From == To, gamma is Weight for t >= From and 0 below.
	From, To float32
	// Prediction says what the wrapped model predicts, as
	// UpsampleOptions.Prediction does: the noise (schedule.PredictEpsilon,
	// the ugo.Denoiser contract; "" means this), the velocity
	// (schedule.PredictV) or the clean sample (schedule.PredictSample), as
	// the solver reads it.
	Prediction schedule.PredictionType
}

// structure is the Denoiser returned by StructureGuidance.
type structure struct {
	model  ugo.Denoiser
	s      *schedule.Schedule
	opts   StructureOptions
	weight float64
	shape  []int
	lpRef  []float32 // LP(ref)
	lp     *lowpass.Filter
	planes int // planes per batch element
	work   sync.Pool
}

type structureWork struct {
	x0, lp, small []float32 // one batch element
}

// StructureGuidance returns a Denoiser that applies ScaleDiff's Structure
// Guidance (arXiv 2510.25818) to model's predictions: at timestep t, with
// x0^ the clean sample the prediction implies,
//
//	x0^ <- x0^ + gamma_t * (LP(ref) - LP(x0^))
//
// pulling the low frequencies of the prediction towards those of the
// reference ref while leaving its high frequencies alone. The result is
// returned as the model output that implies the corrected x0^ for the same
// x_t: for a noise prediction eps,
//
//	eps <- eps - sqrt(abar_t / (1 - abar_t)) * gamma_t * (LP(ref) - LP(x0^))
//
// so that any solver, deriving x0^ from the output as it always does,
// steps from the corrected prediction (DDIM with the corrected x0^ and the
// noise consistent with it, DPM-Solver++ and the Euler samplers with the
// corrected x0^). This is why it is middleware and needs no hook in the
// sampling loop: the solvers compute x0^ inside their step, from the model
// output.
//
// s is the training schedule (abar_t at fractional t is s.AlphaBar(t); the
// Euler samplers' sigma interpolation differs slightly between training
// steps). ref has the shape of the samples, batch included. Steps where
// gamma_t = 0, abar_t = 0 or abar_t = 1 pass model's output through
// unchanged.
//
// The Denoiser is safe for concurrent use when model is, and allocates
// nothing per call once warm.
func StructureGuidance(model ugo.Denoiser, s *schedule.Schedule, ref *tensor.Dense, opts StructureOptions) (ugo.Denoiser, error) {
	if ugo.IsNil(model) {
		return nil, fmt.Errorf("guidance: StructureGuidance needs a model: %w", ugo.ErrNilDenoiser)
	}
	if s == nil || s.Len() == 0 {
		return nil, errors.New("guidance: StructureGuidance needs a non-empty schedule")
	}
	shape, err := ugo.CheckSample("ref", ref)
	if err != nil {
		return nil, err
	}
	if err := ugo.CheckFinite("guidance: StructureGuidance: ref", ref.Float32s()); err != nil {
		return nil, err
	}
	w := opts.Weight
	if w == 0 {
		w = 1
	}
	if !(w > 0) || math.IsInf(w, 0) {
		return nil, fmt.Errorf("guidance: StructureGuidance: weight %v, want a finite positive number", opts.Weight)
	}
	if !(opts.From >= opts.To) || math.IsInf(float64(opts.From), 0) || math.IsInf(float64(opts.To), 0) {
		return nil, fmt.Errorf("guidance: StructureGuidance: from timestep %v to %v, want finite From >= To", opts.From, opts.To)
	}
	switch opts.Prediction {
	case "", schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample:
	default:
		return nil, fmt.Errorf("guidance: StructureGuidance: unknown Prediction %q, want %q, %q or %q",
			opts.Prediction, schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample)
	}
	r := len(shape)
	lp, err := lowpass.New(shape[r-2], shape[r-1], opts.Cutoff)
	if err != nil {
		return nil, fmt.Errorf("guidance: StructureGuidance: %w", err)
	}
	src := ref.Float32s()
	planes := len(src) / (shape[0] * shape[r-2] * shape[r-1])
	g := &structure{
		model: model, s: s, opts: opts, weight: w,
		shape: shape, lpRef: make([]float32, len(src)), lp: lp, planes: planes,
	}
	lp.Apply(g.lpRef, src, make([]float32, lp.SmallLen(len(src)/(shape[r-2]*shape[r-1]))))
	return g, nil
}

// gamma returns gamma_t.
func (g *structure) gamma(t float32) float64 {
	from, to := float64(g.opts.From), float64(g.opts.To)
	tt := float64(t)
	switch {
	case tt >= from:
		return g.weight
	case tt <= to:
		return 0
	}
	return g.weight * (tt - to) / (from - to)
}

// FillsCPU implements ugo.CPUFiller: the guided model fills the CPU when
// the model it wraps does.
func (g *structure) FillsCPU() bool { return ugo.FillsCPU(g.model) }

// PredictNoise implements ugo.Denoiser.
func (g *structure) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	if xs := []int(x.Shape()); !slices.Equal([]int(xs), []int(g.shape)) {
		return &ugo.ShapeError{What: "x", Got: xs, Want: fmt.Sprintf("the shape of the structure reference %v", g.shape)}
	}
	if err := g.model.PredictNoise(ctx, dst, x, t); err != nil {
		return err
	}
	wk, _ := g.work.Get().(*structureWork)
	if wk == nil {
		per := len(g.lpRef) / g.shape[0]
		wk = &structureWork{x0: make([]float32, per), lp: make([]float32, per), small: make([]float32, g.lp.SmallLen(g.planes))}
	}
	defer g.work.Put(wk)
	xs, out := x.Float32s(), dst.Float32s()
	per := len(wk.x0)
	for b := range g.shape[0] {
		tb := ugo.TimestepAt(t, b)
		gamma := g.gamma(tb)
		abar := g.s.AlphaBar(float64(tb))
		if gamma == 0 || !(abar > 0 && abar < 1) {
			continue
		}
		sa, sb := math.Sqrt(abar), math.Sqrt(1-abar)
		xb, ob, ref := xs[b*per:(b+1)*per], out[b*per:(b+1)*per], g.lpRef[b*per:(b+1)*per]
		// x0^ from the model output.
		switch g.opts.Prediction {
		case "", schedule.PredictEpsilon:
			a, c := float32(1/sa), float32(sb/sa)
			for i, v := range xb {
				wk.x0[i] = a*v - c*ob[i]
			}
		case schedule.PredictV:
			a, c := float32(sa), float32(sb)
			for i, v := range xb {
				wk.x0[i] = a*v - c*ob[i]
			}
		case schedule.PredictSample:
			copy(wk.x0, ob)
		}
		g.lp.Apply(wk.lp, wk.x0, wk.small)
		// The output change that moves x0^ by d = gamma (LP(ref) - LP(x0^)).
		var k float64
		switch g.opts.Prediction {
		case "", schedule.PredictEpsilon:
			k = -gamma * sa / sb
		case schedule.PredictV:
			k = -gamma / sb
		case schedule.PredictSample:
			k = gamma
		}
		kf := float32(k)
		for i, r := range ref {
			ob[i] += kf * (r - wk.lp[i])
		}
	}
	return nil
}
