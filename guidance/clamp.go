package guidance

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/modelcall"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// BlockClamp returns a sampler.Hook (sampler.Options.Hook) that keeps the
// clean sample every step predicts inside [-r, r] in a way that commutes
// with the pooling of Upsample Guidance: per upsampling block the mean is
// clamped and the deviations from it are scaled down just enough to fit.
// Blocks already inside the range are left alone, bit for bit. It applies
// where the guidance of opts is on (UpsampleOptions.Active at the step's
// timestep, s being the schedule of the run, whose training steps the Eta
// window counts), with opts.Factors (nil means [2, 2]); elsewhere, and at
// factors whose product is 1, it leaves x0 alone.
//
// Use it with Upsample Guidance and r the sampler's clip range when the
// model's clean samples are bounded (pixels in [-1, 1]): an element-wise
// clip of the high-resolution x0 shifts the mean of every block that
// straddles a bound (a black background with fine texture turns grey), so
// the pooled trajectory drifts from the low-resolution one that guidance
// steers it to; the block clamp keeps them together and leaves the
// sampler's own clip_sample, which runs after the hook, nothing to do. As
// a hook it works with every solver, diffusers' default DDIM
// (use_clipped_model_output false) included: the step reads the clamped x0
// itself (sampler.Hook says where each solver does).
//
// The Hook is safe for concurrent runs; it keeps one set of buffers per
// sample shape and concurrent run and allocates nothing per step once they
// exist. Its X0 method returns a *ugo.ShapeError for a sample whose axes
// the factors do not divide.
func BlockClamp(s *schedule.Schedule, opts UpsampleOptions, r float64) (sampler.Hook, error) {
	if s == nil || s.Len() == 0 {
		return nil, errors.New("guidance: BlockClamp: nil or empty schedule")
	}
	if !(r > 0 && r <= math.MaxFloat32) {
		return nil, fmt.Errorf("guidance: BlockClamp: range %v, want a positive finite number", r)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	factors := opts.Factors
	if factors == nil {
		factors = []int{2, 2}
	}
	opts.Factors = append([]int(nil), factors...)
	k := 1
	for _, f := range factors {
		k *= f
	}
	return &blockClamp{s: s, opts: opts, r: float32(r), k: k}, nil
}

// blockClamp is the Hook of BlockClamp.
type blockClamp struct {
	s    *schedule.Schedule
	opts UpsampleOptions
	r    float32
	k    int
	work modelcall.FreeList[*clampWork]
}

// clampWork holds the buffers of one sample shape.
type clampWork struct {
	plan          resample.Pooling // one batch element
	means, scales []float32
}

// X0 implements sampler.Hook: it clamps x0 block-wise where guidance is on.
func (c *blockClamp) X0(_ context.Context, at sampler.HookStep, x0 []float32) error {
	if c.k == 1 || !c.opts.Active(float64(at.Timestep()), c.s.Len()) {
		return nil
	}
	shape := at.Shape
	ws, ok := c.work.Get(shape)
	if !ok {
		if len(c.opts.Factors) > len(shape)-2 {
			return &ugo.ShapeError{What: "x", Got: shape, Want: fmt.Sprintf("rank 5 (N,C,F,H,W) for the %d upsample factors %v", len(c.opts.Factors), c.opts.Factors)}
		}
		one := append([]int{1}, shape[1:]...)
		plan, err := resample.NewPooling(one, c.opts.Factors)
		if err != nil {
			return &ugo.ShapeError{What: "x", Got: shape, Want: err.Error()}
		}
		ws = &clampWork{plan: plan, means: make([]float32, plan.LowLen()), scales: make([]float32, plan.LowLen())}
	}
	defer c.work.Put(shape, ws)
	per := ws.plan.HighLen()
	if per == 0 || len(x0)%per != 0 {
		return &ugo.ShapeError{What: "x0", Got: []int{len(x0)}, Want: fmt.Sprintf("a multiple of %d values (shape %v)", per, shape)}
	}
	for b := 0; b < len(x0); b += per {
		ws.plan.ClampBlocks(x0[b:b+per], ws.means, ws.scales, c.r)
	}
	return nil
}

// Sample implements sampler.Hook; the block clamp leaves the sample alone.
func (c *blockClamp) Sample(context.Context, sampler.HookStep, []float32) error { return nil }
