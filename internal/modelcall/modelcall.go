package modelcall

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// maxRank is the largest sample rank (N, C, F, H, W).
const maxRank = 5

// shapeKey identifies a sample shape in a workspace cache.
type shapeKey [maxRank + 1]int

func keyOf(shape []int) shapeKey {
	var k shapeKey
	k[0] = len(shape)
	copy(k[1:], shape)
	return k
}

// Check validates the arguments of PredictNoise like ugo.CheckPrediction but
// without allocating on success (ugo.CheckPrediction reads the backing slices
// through (*tensor.Dense).Data, which allocates), and returns x's shape. On
// failure it defers to ugo.CheckPrediction for the error; pkg prefixes the
// message of the rare failure ugo.CheckPrediction does not name.
func Check(pkg string, dst, x *tensor.Dense, t []float32) ([]int, error) {
	if ok, shape := fastValid(dst, x, t); ok {
		return shape, nil
	}
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: invalid arguments (x shape %v, dst shape %v, %d timesteps)", pkg, x.Shape(), dst.Shape(), len(t))
}

func fastValid(dst, x *tensor.Dense, t []float32) (bool, []int) {
	if dst == nil || x == nil || x.Dtype() != tensor.Float32 || dst.Dtype() != tensor.Float32 {
		return false, nil
	}
	xs, ds := []int(x.Shape()), []int(dst.Shape())
	if (len(xs) != 4 && len(xs) != 5) || len(xs) != len(ds) {
		return false, nil
	}
	n := 1
	for i, d := range xs {
		if d <= 0 || ds[i] != d {
			return false, nil
		}
		n *= d
	}
	if len(x.Float32s()) != n || len(dst.Float32s()) != n {
		return false, nil
	}
	if x.RequiresIterator() || dst.RequiresIterator() || !x.DataOrder().IsRowMajor() || !dst.DataOrder().IsRowMajor() || ugo.Overlapping(dst, x) {
		return false, nil
	}
	if len(t) != 1 && len(t) != xs[0] {
		return false, nil
	}
	for _, v := range t {
		if v != v || v > 3.4e38 || v < -3.4e38 {
			return false, nil
		}
	}
	return true, xs
}

// FreeList is a mutex-guarded cache of workspaces by sample shape. Unlike a
// sync.Pool it survives garbage collections, so a steady sampling loop never
// allocates; it keeps at most one workspace per concurrent caller and shape.
type FreeList[W any] struct {
	mu    sync.Mutex
	lists map[shapeKey][]W
}

// Get takes a cached workspace for shape, if there is one.
func (f *FreeList[W]) Get(shape []int) (W, bool) {
	key := keyOf(shape)
	f.mu.Lock()
	defer f.mu.Unlock()
	var zero W
	l := f.lists[key]
	if len(l) == 0 {
		return zero, false
	}
	w := l[len(l)-1]
	l[len(l)-1] = zero
	f.lists[key] = l[:len(l)-1]
	return w, true
}

// Put returns a workspace for shape to the cache.
func (f *FreeList[W]) Put(shape []int, w W) {
	key := keyOf(shape)
	f.mu.Lock()
	if f.lists == nil {
		f.lists = make(map[shapeKey][]W)
	}
	f.lists[key] = append(f.lists[key], w)
	f.mu.Unlock()
}

// Call is one Denoiser invocation run on a helper goroutine. The caller
// fills the exported fields, starts it with Start, and collects the outcome
// with Wait. A Call is reused from step to step, so running one allocates
// nothing.
type Call struct {
	Ctx    context.Context
	Model  ugo.Denoiser
	Dst, X *tensor.Dense
	T      []float32

	err      error
	panicVal any
	panicked bool
	wg       sync.WaitGroup
}

func (c *Call) run() {
	defer c.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			c.panicVal, c.panicked = r, true
		}
	}()
	c.err = c.Model.PredictNoise(c.Ctx, c.Dst, c.X, c.T)
}

// Start runs the call concurrently.
func (c *Call) Start() {
	c.err, c.panicVal, c.panicked = nil, nil, false
	c.wg.Add(1)
	spawn(c)
}

// Wait blocks until the call has returned, re-raises a panic of the model
// on the caller's goroutine, clears the references the call held, and
// returns the model's error.
func (c *Call) Wait() error {
	c.wg.Wait()
	c.Ctx, c.Dst, c.X, c.T = nil, nil, nil, nil
	if c.panicked {
		p := c.panicVal
		c.panicVal, c.panicked = nil, false
		panic(p)
	}
	return c.err
}

// Helper goroutines. Starting a goroutine with arguments allocates its
// closure, so concurrent model calls are handed to idle helpers over a
// channel instead; a new helper starts only when none is idle, and idle
// helpers exit after helperIdle.
var helpers = make(chan *Call)

const helperIdle = 30 * time.Second

func spawn(c *Call) {
	select {
	case helpers <- c:
	default:
		go helper(c)
	}
}

func helper(c *Call) {
	c.run()
	timer := time.NewTimer(helperIdle)
	defer timer.Stop()
	for {
		select {
		case c = <-helpers:
			c.run()
			timer.Reset(helperIdle)
		case <-timer.C:
			return
		}
	}
}
