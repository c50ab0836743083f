package guidance

import (
	"context"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/modelcall"
)

// cfg is the Denoiser returned by CFG.
type cfg struct {
	cond, uncond ugo.Denoiser
	scale        float64
	work         modelcall.FreeList[*cfgWork]
}

type cfgWork struct {
	uncond *tensor.Dense
	call   modelcall.Call
}

// CFG returns a Denoiser that applies classifier-free guidance (Ho and
// Salimans, arXiv 2207.12598):
//
//	eps = eps_uncond + scale * (eps_cond - eps_uncond)
//
// cond and uncond are the same network conditioned on the prompt and on the
// empty prompt (for example two onnx sessions fed different embeddings).
// The two calls run concurrently on the same x, so dst must not share memory
// with x; when both models report that one call keeps every CPU core busy
// (ugo.FillsCPU), one after the other instead (the result is the same).
// The returned Denoiser implements ugo.CPUFiller: it fills the CPU when
// either model does. scale is diffusers' guidance_scale; 1 gives the conditional
// prediction (computed as uncond + 1*(cond - uncond), so equal to it only up
// to rounding).
//
// To combine both guidances, wrap: Upsample(CFG(cond, uncond, s), ...).
// The Upsample Guidance term is linear in the model outputs, so this equals,
// up to rounding, CFG of the two Upsample'd branches, with the same four
// model calls per step but one pooling and one combination.
//
// Errors from either model are returned; a nil model (ugo.ErrNilDenoiser,
// typed nils included) or a scale outside the float32 range makes every
// call fail, and a combination that overflows float32 is an error wrapping
// ugo.ErrNonFinite. The result is safe for concurrent use when cond
// and uncond are, and allocates nothing per call in steady state.
func CFG(cond, uncond ugo.Denoiser, scale float64) ugo.Denoiser {
	return &cfg{cond: cond, uncond: uncond, scale: scale}
}

// FillsCPU implements ugo.CPUFiller.
func (g *cfg) FillsCPU() bool { return ugo.FillsCPU(g.cond) || ugo.FillsCPU(g.uncond) }

// PredictNoise implements ugo.Denoiser.
func (g *cfg) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if ugo.IsNil(g.cond) || ugo.IsNil(g.uncond) {
		return fmt.Errorf("guidance: CFG: nil model: %w", ugo.ErrNilDenoiser)
	}
	if !(math.Abs(g.scale) <= math.MaxFloat32) {
		return fmt.Errorf("guidance: CFG: scale is %v, want a finite float32 number", g.scale)
	}
	shape, err := checkCall(dst, x, t)
	if err != nil {
		return err
	}
	ws, ok := g.work.Get(shape)
	if !ok {
		if need := ugo.TensorBytes(1, shape...); need > ugo.MemoryLimit() {
			return ugo.CheckMemory(fmt.Sprintf("guidance: CFG: the unconditional buffer of a %v sample", shape), need)
		}
		ws = &cfgWork{uncond: newTensor(shape)}
	}
	defer g.work.Put(shape, ws)

	var errCond, errUncond error
	if ugo.FillsCPU(g.cond) && ugo.FillsCPU(g.uncond) {
		errCond = g.cond.PredictNoise(ctx, dst, x, t)
		if errCond == nil {
			errUncond = g.uncond.PredictNoise(ctx, ws.uncond, x, t)
		}
	} else {
		c := &ws.call
		c.Ctx, c.Model, c.Dst, c.X, c.T = ctx, g.uncond, ws.uncond, x, t
		c.Start()
		errCond = g.cond.PredictNoise(ctx, dst, x, t)
		errUncond = c.Wait()
	}
	if errCond != nil {
		return fmt.Errorf("guidance: CFG: conditional model: %w", errCond)
	}
	if errUncond != nil {
		return fmt.Errorf("guidance: CFG: unconditional model: %w", errUncond)
	}
	s := float32(g.scale)
	u := ws.uncond.Float32s()
	d := dst.Float32s()
	d = d[:len(u)]
	for i, e := range u {
		d[i] = e + s*(d[i]-e)
	}
	if ugo.FirstNonFinite(d) >= 0 {
		// A scale or outputs so large that the combination overflows.
		return ugo.CheckFinite("guidance: CFG: combined prediction", d)
	}
	return nil
}
