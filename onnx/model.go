package onnx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// ErrClosed is returned by calls on a closed Model.
var ErrClosed = errors.New("onnx: model is closed")

// ErrNonFinite is wrapped by the error PredictNoise and Graph.Run return
// when the model produced a NaN or an infinity. It is ugo.ErrNonFinite, so
// errors.Is(err, sampler.ErrNonFinite) holds for it too.
var ErrNonFinite = ugo.ErrNonFinite

// errNil is returned by the methods of a nil *Model, *Bound, *CFG or *Graph
// (such as the result of a failed Open): it wraps both
// ugo.ErrNilDenoiser and ErrClosed.
var errNil = fmt.Errorf("onnx: %w (a nil model, as a failed Open returns): %w", ugo.ErrNilDenoiser, ErrClosed)

// Cache bounds: idle pre-allocated bindings kept per shape, and distinct
// shapes (times bound-input sets) kept before older ones are dropped.
const (
	maxIdlePerKey = 16
	maxKeys       = 32
)

// Model is an ONNX diffusion model (an eps-prediction network) loaded into
// an ONNX Runtime session. It implements ugo.Denoiser and is safe for
// concurrent use. Close releases it.
type Model struct {
	info    ModelInfo
	sess    *ort.DynamicAdvancedSession
	shapes  *shapeSessions // WithShapeSessions; nil without
	extraIx map[string]int // extra input name -> index in info.Extra
	root    *Bound
	nextID  atomic.Uint64
	fills   bool            // see FillsCPU
	observe func(RunTiming) // WithRunObserver; nil without

	mu     sync.RWMutex // held for reading by calls, for writing by Close
	closed bool

	cacheMu sync.Mutex
	cache   map[bindKey][]*binding // idle bindings
}

// Open loads the ONNX model at path. It initialises the ONNX Runtime on first
// use (see InitRuntime for how the shared library is found), inspects the
// model's inputs and outputs and creates a session that accepts a new input
// shape on every call. ONNX Runtime reads the file itself, so that models
// whose weights are stored as external data beside the .onnx file load,
// such as the UNet of diffusers' ONNX export (unet/model.onnx with
// unet/weights.pb) or of optimum's (model.onnx with model.onnx_data).
//
// Input roles are detected by name: the sample from x, sample, x_t, latent
// (...), the timestep from t, timestep, timesteps, and the output from eps,
// out_sample, noise_pred (or the only output); WithInputNames and
// WithOutputName override detection. Any other input (diffusers'
// encoder_hidden_states, class labels, ...) is an extra input to bind with
// With before predicting.
func Open(path string, opts ...Option) (*Model, error) {
	return openModel(path, opts)
}

// Info describes the model: inputs, outputs, the roles assigned to them,
// fixed and dynamic dimensions, and the execution providers in use.
func (m *Model) Info() ModelInfo {
	if m == nil {
		return ModelInfo{}
	}
	mi := m.info
	mi.Inputs = slices.Clone(mi.Inputs)
	mi.Outputs = slices.Clone(mi.Outputs)
	mi.Extra = slices.Clone(mi.Extra)
	mi.Providers = slices.Clone(mi.Providers)
	return mi
}

// PredictNoise implements ugo.Denoiser: it writes the model's output for
// (x, t) into dst. A model with extra inputs must be bound first (see With).
//
// For an integer-timestep model each t is rounded to the nearest integer
// (ties to even, as torch.round), so fractional Upsample Guidance times are
// quantised. A model whose timestep is [1] or a scalar needs one shared
// timestep per call. A float16 model gets x and t converted to half
// precision and its output converted back. The error wraps ErrNonFinite when
// the output holds a NaN or an infinity, ctx.Err() when ctx ended the call
// (the running inference is stopped through RunOptions.Terminate), and is a
// *ugo.ShapeError when x has a size the model cannot take.
func (m *Model) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if m == nil {
		return errNil
	}
	return m.root.PredictNoise(ctx, dst, x, t)
}

// FillsCPU implements ugo.CPUFiller: it reports whether one call keeps
// every CPU core busy, which is the case when the model runs on the CPU
// provider alone with ONNX Runtime's default intra-op thread pool (one
// thread per physical core) or with WithThreads giving at least
// runtime.NumCPU() intra-op threads. Upsample Guidance then runs its two
// model calls one after the other instead of concurrently (see
// guidance.UpsampleOptions). With fewer threads, or on a GPU provider, it
// reports false.
func (m *Model) FillsCPU() bool { return m != nil && m.fills }

// Close releases the session and all pre-allocated tensors. It waits for
// running calls to finish; later calls return ErrClosed. Bound denoisers
// derived from the model stop working too. Close is idempotent. The
// process-wide ONNX Runtime environment stays loaded.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.cacheMu.Lock()
	for k, bs := range m.cache {
		for _, b := range bs {
			b.destroy()
		}
		delete(m.cache, k)
	}
	m.cacheMu.Unlock()
	err := m.shapes.destroy()
	if derr := m.sess.Destroy(); derr != nil {
		err = errors.Join(err, fmt.Errorf("onnx: destroying session: %w", derr))
	}
	return err
}

// ShapeSessions describes the shape-specialised sessions the model has
// created so far (see WithShapeSessions), in the order of the first call
// of each shape; none without that option.
func (m *Model) ShapeSessions() []ShapeSession {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.shapes.list()
}

// bindKey identifies a set of pre-allocated tensors: the bound-input sets of
// the batch members and the sample shape of one member.
type bindKey struct {
	members [2]uint64
	nmem    int
	rank    int
	shape   [5]int
}

// binding is the pre-allocated input and output tensors for one call shape.
// It is used by one call at a time.
type binding struct {
	key     bindKey
	inputs  []ort.Value
	outputs []ort.Value
	owned   []ort.Value // everything to destroy, including extras

	x32     []float32
	x16     []uint16
	tlen    int
	tdt     DType
	t32     []float32
	t16     []uint16
	t64     []float64
	ti64    []int64
	ti32    []int32
	tScalar bool // the timestep is a rank-0 tensor
	// t0 is that tensor, created once and rewritten per call (nil on
	// Windows, where scalars other than float16 are created per call).
	t0    *rankZero
	out32 []float32
	out16 []uint16

	// shapeDims are the dimensions of each session input and shapeKey
	// their shapeKey, which select a shape-specialised session.
	shapeDims [][]int64
	shapeKey  string

	ro        *ort.RunOptions
	termDone  chan struct{}
	terminate func()
	broken    bool
}

func (b *binding) destroy() {
	for _, v := range b.owned {
		v.Destroy()
	}
	b.owned = nil
	if b.ro != nil {
		b.ro.Destroy()
		b.ro = nil
	}
}

// acquire returns an idle binding for key or creates one.
func (m *Model) acquire(key bindKey, members []*Bound, xshape []int, n int) (*binding, error) {
	m.cacheMu.Lock()
	if bs := m.cache[key]; len(bs) > 0 {
		b := bs[len(bs)-1]
		m.cache[key] = bs[:len(bs)-1]
		m.cacheMu.Unlock()
		return b, nil
	}
	m.cacheMu.Unlock()
	return m.newBinding(key, members, xshape, n)
}

// release returns b to the cache, or destroys it when the cache is full.
func (m *Model) release(b *binding) {
	if b.broken {
		b.destroy()
		return
	}
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	bs, ok := m.cache[b.key]
	if !ok && len(m.cache) >= maxKeys {
		for k, old := range m.cache { // drop some other shape
			for _, ob := range old {
				ob.destroy()
			}
			delete(m.cache, k)
			break
		}
	}
	if len(bs) >= maxIdlePerKey {
		b.destroy()
		return
	}
	m.cache[b.key] = append(bs, b)
}

func (m *Model) newBinding(key bindKey, members []*Bound, xshape []int, n int) (_ *binding, err error) {
	mi := &m.info
	batch := len(members) * n
	b := &binding{key: key, termDone: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			b.destroy()
		}
	}()
	own := func(v ort.Value, err error) (ort.Value, error) {
		if err == nil {
			b.owned = append(b.owned, v)
		}
		return v, err
	}

	// Sample.
	dims := make([]int64, len(xshape))
	numel := batch
	for i, d := range xshape {
		dims[i] = int64(d)
		if i > 0 {
			numel *= d
		}
	}
	dims[0] = int64(batch)
	var xs any
	if mi.Sample.DType == Float16 {
		b.x16 = make([]uint16, numel)
		xs = b.x16
	} else {
		b.x32 = make([]float32, numel)
		xs = b.x32
	}
	xv, err := own(newValue(mi.Sample.DType, dims, xs))
	if err != nil {
		return nil, fmt.Errorf("onnx: allocating sample tensor: %w", err)
	}

	// Timestep.
	b.tdt = mi.Timestep.DType
	var tv ort.Value
	switch mi.TimestepShape {
	case TimestepScalar:
		b.tScalar, b.tlen = true, 1
	case TimestepSingle:
		b.tlen = 1
	default:
		b.tlen = batch
	}
	ts := makeSlice(b.tdt, b.tlen)
	switch s := ts.(type) {
	case []float32:
		b.t32 = s
	case []uint16:
		b.t16 = s
	case []float64:
		b.t64 = s
	case []int64:
		b.ti64 = s
	case []int32:
		b.ti32 = s
	}
	switch {
	case b.tScalar:
		if b.t0, err = newRankZero(b.tdt); err == nil {
			tv, _ = own(b.t0, nil)
		} else if b.tdt != Float16 {
			b.t0, err = nil, nil // created per call instead
		}
	case !b.tScalar:
		tv, err = own(newValue(b.tdt, []int64{int64(b.tlen)}, ts))
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: allocating timestep tensor: %w", err)
	}
	b.inputs = []ort.Value{xv, tv}
	var tdims []int64
	if !b.tScalar {
		tdims = []int64{int64(b.tlen)}
	}
	b.shapeDims = [][]int64{dims, tdims}

	// Extra inputs, tiled to the batch and concatenated over members.
	for i, e := range mi.Extra {
		parts := make([]any, len(members))
		reps := make([]int, len(members))
		var vdims []int64
		for k, mem := range members {
			bv := mem.values[i]
			parts[k], reps[k] = bv.data, 1
			vdims = slices.Clone(bv.dims)
			if len(bv.dims) > 0 && e.Dims[0] < 0 {
				switch {
				case bv.dims[0] == int64(n):
				case bv.dims[0] == 1:
					reps[k] = n
				default:
					return nil, fmt.Errorf("onnx: bound input %s has batch %d, but x has batch %d; want %d or 1",
						e.Name, bv.dims[0], n, n)
				}
				vdims[0] = int64(n * len(members))
			}
		}
		data := parts[0]
		if len(members) > 1 || reps[0] > 1 {
			data = tileConcat(e.DType, parts, reps)
		}
		v, err := own(newValue(e.DType, vdims, data))
		if err != nil {
			return nil, fmt.Errorf("onnx: allocating bound input %s: %w", e.Name, err)
		}
		b.inputs = append(b.inputs, v)
		b.shapeDims = append(b.shapeDims, vdims)
	}
	b.shapeKey = shapeKey(b.shapeDims)

	// Output.
	var outs any
	if mi.Output.DType == Float16 {
		b.out16 = make([]uint16, numel)
		b.out32 = make([]float32, numel)
		outs = b.out16
	} else {
		b.out32 = make([]float32, numel)
		outs = b.out32
	}
	ov, err := own(newValue(mi.Output.DType, dims, outs))
	if err != nil {
		return nil, fmt.Errorf("onnx: allocating output tensor: %w", err)
	}
	b.outputs = []ort.Value{ov}

	if b.ro, err = ort.NewRunOptions(); err != nil {
		return nil, fmt.Errorf("onnx: creating run options: %w", err)
	}
	ro := b.ro
	b.terminate = func() {
		ro.Terminate()
		b.termDone <- struct{}{}
	}
	return b, nil
}

// setInputs copies x (once per member) and the timesteps into b. A sample
// value beyond a float16 input's range is a *RangeError.
func (b *binding) setInputs(x []float32, t []float32, n, nmem int) error {
	per := len(x)
	for k := range nmem {
		if b.x16 != nil {
			if i := toFloat16Checked(b.x16[k*per:(k+1)*per], x); i >= 0 {
				return &RangeError{DType: Float16, Index: i, Value: float64(x[i])}
			}
		} else {
			copy(b.x32[k*per:], x)
		}
	}
	for i := range b.tlen {
		v := ugo.TimestepAt(t, i%n)
		switch {
		case b.t32 != nil:
			b.t32[i] = v
		case b.t16 != nil:
			b.t16[i] = toHalf(v)
		case b.t64 != nil:
			b.t64[i] = float64(v)
		case b.ti64 != nil:
			b.ti64[i] = int64(roundTimestep(v))
		case b.ti32 != nil:
			b.ti32[i] = int32(roundTimestep(v))
		}
	}
	if b.t0 != nil {
		switch b.tdt {
		case Float32:
			b.t0.setFloat32(b.t32[0])
		case Float16:
			b.t0.setFloat16(b.t16[0])
		case Float64:
			b.t0.setFloat64(b.t64[0])
		case Int64:
			b.t0.setInt64(b.ti64[0])
		case Int32:
			b.t0.setInt32(b.ti32[0])
		}
	} else if b.tScalar {
		var err error
		switch b.tdt {
		case Float32:
			b.inputs[1], err = ort.NewScalar(b.t32[0])
		case Float64:
			b.inputs[1], err = ort.NewScalar(b.t64[0])
		case Int64:
			b.inputs[1], err = ort.NewScalar(b.ti64[0])
		case Int32:
			b.inputs[1], err = ort.NewScalar(b.ti32[0])
		default:
			err = fmt.Errorf("onnx: no scalar timestep of type %s", b.tdt)
		}
		if err != nil {
			return fmt.Errorf("onnx: creating timestep scalar: %w", err)
		}
	}
	return nil
}

func toHalf(v float32) uint16 {
	var h [1]uint16
	toFloat16(h[:], []float32{v})
	return h[0]
}

// run executes the session on b, stopping it through RunOptions.Terminate
// when ctx ends.
func (b *binding) run(ctx context.Context, sess *ort.DynamicAdvancedSession, observe func(RunTiming), path string) error {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, b.terminate)
	}
	err := observed(observe, path, b.shapeDims, func() error { return sess.RunWithOptions(b.inputs, b.outputs, b.ro) })
	if b.tScalar && b.t0 == nil {
		b.inputs[1].Destroy()
		b.inputs[1] = nil
	}
	if stop != nil && !stop() {
		// The terminate callback ran: wait for it, then clear the flag so the
		// binding can be reused.
		<-b.termDone
		if uerr := b.ro.UnsetTerminate(); uerr != nil {
			b.broken = true
		}
		if err != nil {
			return fmt.Errorf("onnx: inference stopped: %w", ctx.Err())
		}
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("onnx: inference stopped: %w", cerr)
		}
		return &RunError{Err: err}
	}
	return nil
}

// output returns the model output as float32 (converting float16) after
// checking that it is finite.
func (b *binding) output(name string) ([]float32, error) {
	if b.out16 != nil {
		fromFloat16(b.out32, b.out16)
	}
	if i := ugo.FirstNonFinite(b.out32); i >= 0 {
		return nil, fmt.Errorf("onnx: %w: output %s element %d is %v", ErrNonFinite, name, i, b.out32[i])
	}
	return b.out32, nil
}

// call validates the arguments, runs the model once over the members (each
// seeing x and t) and returns the binding holding the output, which the
// caller must release.
func (m *Model) call(ctx context.Context, dst, x *tensor.Dense, t []float32, members []*Bound) (*binding, []float32, error) {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	shape := []int(x.Shape())
	if err := m.info.CheckShape(shape); err != nil {
		return nil, nil, err
	}
	n := shape[0]
	if m.info.TimestepShape != TimestepBatch {
		for _, v := range t[1:] {
			if v != t[0] {
				return nil, nil, fmt.Errorf("onnx: the model takes one timestep per call (input %s is %s), got differing timesteps %v",
					m.info.Timestep, m.info.TimestepShape, t)
			}
		}
	}
	for i, v := range t {
		if re := checkRange(m.info.Timestep.DType, float64(v), i); re != nil {
			re.Input = m.info.Timestep.Name
			return nil, nil, re
		}
	}
	if !m.info.DynamicBatch() && len(members)*n != int(m.info.Sample.Dims[0]) {
		return nil, nil, &ugo.ShapeError{What: "x", Got: shape,
			Want: fmt.Sprintf("a batch of %d: model input %s has a fixed batch size", m.info.Sample.Dims[0], m.info.Sample)}
	}
	for _, mem := range members {
		for i, v := range mem.values {
			if v == nil {
				return nil, nil, fmt.Errorf("onnx: model input %s is not bound; bind it with Model.With", m.info.Extra[i])
			}
		}
	}

	key := bindKey{nmem: len(members), rank: len(shape)}
	for k, mem := range members {
		key.members[k] = mem.id
	}
	copy(key.shape[:], shape)

	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, nil, ErrClosed
	}
	b, err := m.acquire(key, members, shape, n)
	if err != nil {
		return nil, nil, err
	}
	if err := b.setInputs(x.Float32s(), t, n, len(members)); err != nil {
		m.release(b)
		if re, ok := err.(*RangeError); ok {
			re.Input = m.info.Sample.Name
		}
		return nil, nil, err
	}
	sess := m.sess
	if s := m.shapes.session(b.shapeKey, b.shapeDims); s != nil {
		sess = s
	}
	if err := b.run(ctx, sess, m.observe, m.info.Path); err != nil {
		m.release(b)
		if re, ok := err.(*RunError); ok {
			re.Model, re.Shape = m.info.Path, slices.Clone(shape)
			return nil, nil, re
		}
		return nil, nil, fmt.Errorf("%w (model %s)", err, m.info.Path)
	}
	out, err := b.output(m.info.Output.Name)
	if err != nil {
		m.release(b)
		return nil, nil, err
	}
	return b, out, nil
}

// done returns b to the cache, or destroys it when the model was closed meanwhile.
func (m *Model) done(b *binding) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		b.destroy()
		return
	}
	m.release(b)
}
