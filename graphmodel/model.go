package graphmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// BuildFunc adds an eps-prediction network to g and returns its output node.
//
// x is a float32 input node of shape (N, C, H, W) (or (N, C, F, H, W) for
// video samples) and t a float32 vector of N timesteps, one per batch
// element. The returned node must be float32 and have the shape of x.
//
// A BuildFunc is called once per distinct input shape, each time on a fresh
// graph, so it must create every node it needs in g, parameters included.
// Parameters shared by the graphs of several shapes are bound with Weight.
// It may return an error (a shape the network cannot handle, say); a panic
// inside it, or inside gorgonia while it builds or compiles the graph, is
// recovered and returned as an error too.
type BuildFunc func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (eps *gorgonia.Node, err error)

// Stats counts the work of a Model's graph cache.
type Stats struct {
	// Compiles is the number of graphs built and compiled, one per
	// distinct input shape seen (failed builds are not counted).
	Compiles int64
	// Hits is the number of PredictNoise calls served by a graph compiled
	// before.
	Hits int64
	// Shapes is the number of graphs held in the cache.
	Shapes int
}

// Model is a ugo.Denoiser that evaluates a gorgonia expression graph built
// by a BuildFunc. It compiles one graph and one TapeMachine per input shape
// on first use and keeps them; calls at different shapes run concurrently,
// calls at the same shape one at a time. A Model is safe for concurrent use.
type Model struct {
	build BuildFunc

	mu    sync.Mutex
	cache map[shapeKey]*entry

	compiles, hits atomic.Int64
}

// shapeKey identifies an input shape of rank 4 or 5.
type shapeKey struct {
	rank int
	dims [5]int
}

func keyOf(shape []int) shapeKey {
	k := shapeKey{rank: len(shape)}
	copy(k.dims[:], shape)
	return k
}

// entry is the compiled graph of one input shape. mu serialises its runs:
// the bound inputs, the machine's registers and the nodes' values belong to
// one call at a time.
type entry struct {
	mu    sync.Mutex
	ready bool  // compiled successfully
	err   error // the build error, for callers that waited on mu
	vm    gorgonia.VM
	x, t  *tensor.Dense // bound input values; each call copies into them
	out   *gorgonia.Node
}

// New returns a Model that builds its graphs with build.
func New(build BuildFunc) (*Model, error) {
	if build == nil {
		return nil, errors.New("graphmodel: New: nil BuildFunc")
	}
	return &Model{build: build, cache: make(map[shapeKey]*entry)}, nil
}

// Stats returns the cache counters.
func (m *Model) Stats() Stats {
	if m == nil {
		return Stats{}
	}
	m.mu.Lock()
	n := len(m.cache)
	m.mu.Unlock()
	return Stats{Compiles: m.compiles.Load(), Hits: m.hits.Load(), Shapes: n}
}

// PredictNoise implements ugo.Denoiser. It validates its arguments with
// ugo.CheckPrediction, returns ctx.Err() if ctx is done before the graph
// runs, broadcasts a single timestep over the batch, and copies the graph's
// output into dst.
//
// A graph run cannot be interrupted: cancellation is seen before it starts
// (and after waiting for another call at the same shape), not during it.
// A NaN or infinite output (from non-finite x or overflowing weights) is
// an error wrapping ugo.ErrNonFinite, as from the onnx backend. A nil
// *Model returns an error wrapping ugo.ErrNilDenoiser.
func (m *Model) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if m == nil || m.build == nil {
		return fmt.Errorf("graphmodel: %w (a nil or zero Model; use New)", ugo.ErrNilDenoiser)
	}
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	shape := []int(x.Shape())
	key := keyOf(shape)

	m.mu.Lock()
	e := m.cache[key]
	if e == nil {
		e = &entry{}
		m.cache[key] = e
	}
	m.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.ready:
		m.hits.Add(1)
	case e.err != nil:
		return e.err
	default:
		if err := e.compile(m.build, shape); err != nil {
			e.err = err
			m.mu.Lock()
			if m.cache[key] == e {
				delete(m.cache, key)
			}
			m.mu.Unlock()
			return err
		}
		m.compiles.Add(1)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	copy(e.x.Float32s(), x.Float32s())
	tb := e.t.Float32s()
	for i := range tb {
		tb[i] = ugo.TimestepAt(t, i)
	}
	if err := e.run(); err != nil {
		return fmt.Errorf("graphmodel: running the graph for shape %v: %w", shape, err)
	}
	if err := e.readOutput(dst, shape); err != nil {
		return err
	}
	if ugo.FirstNonFinite(dst.Float32s()) >= 0 {
		return ugo.CheckFinite(fmt.Sprintf("graphmodel: output for shape %v", shape), dst.Float32s())
	}
	return nil
}

// buildMu serialises graph construction: gorgonia v0.9.18 builds nodes with
// package-level state (internal/encoding.NewGroup's counter, among others)
// that is not safe for concurrent use, so two Models, or one Model at two
// new shapes, must not build graphs at the same time (the race detector
// caught guidance's two first calls doing so).
var buildMu sync.Mutex

// compile builds and compiles the graph for shape. Panics raised by the
// BuildFunc or by gorgonia are returned as errors.
func (e *entry) compile(build BuildFunc, shape []int) (err error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graphmodel: building the graph for shape %v: panic: %v", shape, r)
		}
	}()
	n := shape[0]
	x := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, shapeSize(shape))))
	t := tensor.New(tensor.WithShape(n), tensor.WithBacking(make([]float32, n)))
	g := gorgonia.NewGraph()
	xn := gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName("graphmodel.x"))
	tn := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(n), gorgonia.WithName("graphmodel.t"))
	if err := gorgonia.Let(xn, x); err != nil {
		return fmt.Errorf("graphmodel: binding x: %w", err)
	}
	if err := gorgonia.Let(tn, t); err != nil {
		return fmt.Errorf("graphmodel: binding t: %w", err)
	}
	out, err := build(g, xn, tn)
	if err != nil {
		return fmt.Errorf("graphmodel: building the graph for shape %v: %w", shape, err)
	}
	if out == nil {
		return fmt.Errorf("graphmodel: building the graph for shape %v: the BuildFunc returned a nil node", shape)
	}
	if out.Graph() != g {
		return fmt.Errorf("graphmodel: building the graph for shape %v: the output node %v belongs to another graph", shape, out)
	}
	if dt := out.Dtype(); dt != tensor.Float32 {
		return fmt.Errorf("graphmodel: building the graph for shape %v: output %v has dtype %v, want float32", shape, out, dt)
	}
	if !slices.Equal([]int(out.Shape()), []int(shape)) {
		return fmt.Errorf("graphmodel: building the graph for shape %v: output %v has shape %v, want the shape of x", shape, out, out.Shape())
	}
	prog, locMap, err := gorgonia.Compile(g)
	if err != nil {
		return fmt.Errorf("graphmodel: compiling the graph for shape %v: %w", shape, err)
	}
	e.vm = gorgonia.NewTapeMachine(g, gorgonia.WithPrecompiled(prog, locMap))
	e.x, e.t, e.out = x, t, out
	e.ready = true
	return nil
}

// run executes the tape once and resets the machine for the next call.
func (e *entry) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
		e.vm.Reset()
	}()
	return e.vm.RunAll()
}

// readOutput copies the output node's value into dst.
func (e *entry) readOutput(dst *tensor.Dense, shape []int) error {
	v, ok := e.out.Value().(*tensor.Dense)
	if !ok || v == nil {
		return fmt.Errorf("graphmodel: the output node %v holds %T, want a *tensor.Dense", e.out, e.out.Value())
	}
	if !slices.Equal([]int(v.Shape()), []int(shape)) || v.Dtype() != tensor.Float32 {
		return fmt.Errorf("graphmodel: the output value has shape %v and dtype %v, want %v float32", v.Shape(), v.Dtype(), shape)
	}
	if v.RequiresIterator() {
		v = v.Materialize().(*tensor.Dense)
	}
	d, src := dst.Float32s(), v.Float32s()
	if len(src) != len(d) {
		return fmt.Errorf("graphmodel: the output value holds %d numbers, want %d", len(src), len(d))
	}
	copy(d, src)
	return nil
}

// Weight returns an input node of g named name that holds the numbers of
// w, a parameter tensor shared by the graphs of several input shapes (and
// by a training graph).
//
// The node is bound to a new *tensor.Dense header over w's backing slice:
// gorgonia changes headers in place (transposing an operand of a matrix
// product, for instance), and separate headers keep one graph's changes
// away from w and from the other graphs, while the numbers themselves are
// shared. Running a graph only reads them, so the graphs of a Model may run
// concurrently; an optimiser step that updates w's elements in place is
// seen by every graph at its next run (do not run both at once).
//
// Gorgonia merges input nodes of a graph that have the same name, type and
// shape, so every weight of a graph needs its own name. w must be a dense,
// non-view tensor.
func Weight(g *gorgonia.ExprGraph, name string, w *tensor.Dense) (*gorgonia.Node, error) {
	if g == nil {
		return nil, errors.New("graphmodel: Weight: nil graph")
	}
	if w == nil {
		return nil, fmt.Errorf("graphmodel: Weight %q: nil tensor", name)
	}
	if w.IsView() || w.RequiresIterator() {
		return nil, fmt.Errorf("graphmodel: Weight %q: a view or non-contiguous tensor, want a dense one", name)
	}
	shape := w.Shape().Clone()
	if len(shape) == 0 {
		return nil, fmt.Errorf("graphmodel: Weight %q: a scalar tensor, want rank >= 1", name)
	}
	view := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(w.Data()))
	n := gorgonia.NewTensor(g, w.Dtype(), len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
	if err := gorgonia.Let(n, view); err != nil {
		return nil, fmt.Errorf("graphmodel: Weight %q: %w", name, err)
	}
	return n, nil
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
