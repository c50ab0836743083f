package onnx

import (
	"context"
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// Bound is a Model with some of its extra inputs (text embeddings, class
// labels, ...) bound to fixed values. It implements ugo.Denoiser; any number
// of Bound denoisers share their model's session, so a conditional and an
// unconditional denoiser for classifier-free guidance cost one model in
// memory. A Bound is immutable and safe for concurrent use; it stops working
// when its Model is closed.
type Bound struct {
	m      *Model
	id     uint64
	values []*boundValue // per extra input of the model; nil when unbound
}

type boundValue struct {
	dims []int64
	data any // typed slice in the input's element type ([]uint16 for float16)
}

// With returns a denoiser that feeds value to the model's extra input name
// on every call. value is copied and converted to the input's element type:
// float tensors feed float32, float16 and float64 inputs; integer tensors
// (int64, int32, int) feed any supported input. value's rank must match the
// input's, and its fixed dimensions must match.
//
// When the input's first dimension is dynamic it is the batch: a value with
// batch 1 is repeated for every element of x's batch, a value whose batch
// equals x's is passed as is, and any other batch is an error at predict
// time.
func (m *Model) With(name string, value *tensor.Dense) (*Bound, error) {
	if m == nil {
		return nil, errNil
	}
	return m.root.With(name, value)
}

// With returns a copy of b that also binds value to the extra input name;
// see Model.With.
func (b *Bound) With(name string, value *tensor.Dense) (*Bound, error) {
	if b == nil || b.m == nil {
		return nil, errNil
	}
	m := b.m
	i, ok := m.extraIx[name]
	if !ok {
		switch name {
		case m.info.Sample.Name, m.info.Timestep.Name:
			return nil, fmt.Errorf("onnx: %q is the model's sample or timestep input; only extra inputs can be bound", name)
		}
		return nil, fmt.Errorf("onnx: the model has no extra input %q; its extra inputs are [%s]", name, names(m.info.Extra))
	}
	in := m.info.Extra[i]
	if err := checkArg("binding", in.String(), value); err != nil {
		return nil, err
	}
	shape := []int(value.Shape())
	if value.IsScalar() {
		shape = nil
	}
	if len(shape) != len(in.Dims) {
		return nil, &ugo.ShapeError{What: name, Got: shape, Want: fmt.Sprintf("rank %d (model input %s)", len(in.Dims), in)}
	}
	dims := make([]int64, len(shape))
	for j, d := range shape {
		dims[j] = int64(d)
		if in.Dims[j] >= 0 && in.Dims[j] != int64(d) {
			return nil, &ugo.ShapeError{What: name, Got: shape, Want: fmt.Sprintf("dimension %d = %d (model input %s)", j, in.Dims[j], in)}
		}
	}
	data, err := convertDense(value, in.DType)
	if err != nil {
		if re, ok := err.(*RangeError); ok {
			re.Input = in.Name
			return nil, re
		}
		return nil, fmt.Errorf("onnx: binding %s: %w", in, err)
	}
	nb := &Bound{m: m, id: m.nextID.Add(1), values: slices.Clone(b.values)}
	nb.values[i] = &boundValue{dims: dims, data: data}
	return nb, nil
}

// Model returns the model b was derived from.
func (b *Bound) Model() *Model {
	if b == nil {
		return nil
	}
	return b.m
}

// PredictNoise implements ugo.Denoiser; see Model.PredictNoise. Every extra
// input of the model must be bound.
func (b *Bound) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if b == nil || b.m == nil {
		return errNil
	}
	bd, out, err := b.m.call(ctx, dst, x, t, []*Bound{b})
	if err != nil {
		return err
	}
	copy(dst.Float32s(), out)
	b.m.done(bd)
	return nil
}

// CFG is a classifier-free-guidance denoiser over two bindings of one model;
// see BatchedCFG.
type CFG struct {
	cond, uncond *Bound
	scale        float32
	batched      bool
}

// BatchedCFG returns the classifier-free-guidance combination of cond and
// uncond, which must be bound from the same model:
//
//	eps = eps_uncond + scale * (eps_cond - eps_uncond)
//
// (diffusers' convention; scale 1 gives eps_cond). scale is diffusers'
// guidance_scale, of the same type as guidance.CFG's: a float64 that must be
// finite in float32, where the combination is computed. When the model has a
// dynamic batch size and every bound input can be stacked along it, both
// predictions are made in one session call on a doubled batch, as
// diffusers' pipelines do; otherwise they are made one after the other.
// Batched reports which. The result is a ugo.Denoiser, so Upsample Guidance
// can wrap it.
func BatchedCFG(cond, uncond *Bound, scale float64) (*CFG, error) {
	if cond == nil || uncond == nil || cond.m == nil || uncond.m == nil {
		return nil, fmt.Errorf("onnx: BatchedCFG: cond and uncond must not be nil: %w", errNil)
	}
	if cond.m != uncond.m {
		return nil, fmt.Errorf("onnx: BatchedCFG: cond and uncond are bound to different models (%s, %s)", cond.m.info.Path, uncond.m.info.Path)
	}
	if !(math.Abs(scale) <= math.MaxFloat32) {
		return nil, fmt.Errorf("onnx: BatchedCFG: scale %v is not finite in float32", scale)
	}
	mi := &cond.m.info
	batched := mi.DynamicBatch()
	for i, e := range mi.Extra {
		c, u := cond.values[i], uncond.values[i]
		if c == nil || u == nil {
			return nil, fmt.Errorf("onnx: BatchedCFG: model input %s is not bound in both cond and uncond", e)
		}
		if len(e.Dims) == 0 || e.Dims[0] >= 0 || !slices.Equal(c.dims[1:], u.dims[1:]) {
			batched = false
		}
	}
	return &CFG{cond: cond, uncond: uncond, scale: float32(scale), batched: batched}, nil
}

// FillsCPU implements ugo.CPUFiller with the answer of the Model b was
// derived from (Model.FillsCPU).
func (b *Bound) FillsCPU() bool { return b != nil && b.m.FillsCPU() }

// FillsCPU implements ugo.CPUFiller with the answer of the Model cond and
// uncond were derived from (Model.FillsCPU).
func (g *CFG) FillsCPU() bool { return g != nil && g.cond != nil && g.cond.m.FillsCPU() }

// Batched reports whether cond and uncond run in one session call.
func (g *CFG) Batched() bool { return g != nil && g.batched }

// PredictNoise implements ugo.Denoiser.
func (g *CFG) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if g == nil || g.cond == nil || g.cond.m == nil {
		return errNil
	}
	m := g.m()
	if g.batched {
		bd, out, err := m.call(ctx, dst, x, t, []*Bound{g.cond, g.uncond})
		if err != nil {
			return err
		}
		n := len(out) / 2
		combineCFG(dst.Float32s(), out[:n], out[n:], g.scale)
		m.done(bd)
		return ugo.CheckFinite("onnx: CFG combination", dst.Float32s())
	}
	bc, c, err := m.call(ctx, dst, x, t, []*Bound{g.cond})
	if err != nil {
		return err
	}
	defer m.done(bc)
	bu, u, err := m.call(ctx, dst, x, t, []*Bound{g.uncond})
	if err != nil {
		return err
	}
	combineCFG(dst.Float32s(), c, u, g.scale)
	m.done(bu)
	return ugo.CheckFinite("onnx: CFG combination", dst.Float32s())
}

func (g *CFG) m() *Model { return g.cond.m }

// combineCFG sets dst = u + s*(c - u).
func combineCFG(dst, c, u []float32, s float32) {
	u = u[:len(dst)]
	c = c[:len(dst)]
	for i := range dst {
		dst[i] = u[i] + s*(c[i]-u[i])
	}
}
