package tiling

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/modelcall"
)

// Blend chooses the weights with which overlapping tile predictions are
// blended.
type Blend int

const (
	// Linear weights rise linearly over the overlap from each tile edge
	// and are flat in the middle (a trapezoid), so that neighbouring
	// tiles cross-fade linearly across their overlap. It is the default.
	Linear Blend = iota
	// Gaussian weights fall off from the tile centre as a Gaussian of
	// standard deviation Size/4, as in Mixture of Diffusers (which uses
	// Size/10).
	Gaussian
)

// String returns "linear" or "gaussian".
func (b Blend) String() string {
	switch b {
	case Linear:
		return "linear"
	case Gaussian:
		return "gaussian"
	}
	return fmt.Sprintf("Blend(%d)", int(b))
}

// Options configures Tiled.
type Options struct {
	// Size is the tile size [H, W] in sample units (latent pixels for a
	// latent model): the resolution the model was trained at, or the
	// static spatial size of a fixed-size export. Required. On an axis
	// shorter than the tile, the tile is the whole axis.
	Size [2]int
	// Overlap is the least overlap [H, W] of neighbouring tiles; a zero
	// entry means a quarter of the tile (at least 1). Each entry must be
	// smaller than its tile size.
	Overlap [2]int
	// Batch is the number of tile calls in flight at once, each on its own
	// goroutine (0 means 1: one after the other on the caller's
	// goroutine). Every call covers one tile position for the whole batch
	// of samples, so that the ugo.Region on its context is exact. Memory
	// for tiles is Batch times an input and an output tile.
	Batch int
	// Blend chooses the blending weights (default Linear).
	Blend Blend
	// Jitter shifts the tile grid at every call by an offset derived from
	// Seed and the timestep (so that a run is reproducible), moving the
	// seams from step to step. Without it the grid is fixed: tiles spread
	// evenly from edge to edge.
	Jitter bool
	// Seed seeds the jitter.
	Seed uint64
}

// Validate reports options that Tiled refuses: a tile size below 1, an
// overlap that is negative or not smaller than the tile, a negative Batch,
// an unknown Blend.
func (o Options) Validate() error {
	_, err := o.validate()
	return err
}

// validate checks the options and returns them with defaults filled in.
func (o Options) validate() (Options, error) {
	for i, s := range o.Size {
		if s < 1 {
			return o, fmt.Errorf("tiling: tile size %v, want positive sizes (the model's training size)", o.Size)
		}
		if o.Overlap[i] < 0 || o.Overlap[i] >= s {
			return o, fmt.Errorf("tiling: overlap %v with tile size %v, want 0 (a quarter of the tile) or less than the tile size", o.Overlap, o.Size)
		}
		if o.Overlap[i] == 0 {
			o.Overlap[i] = max(s/4, 1)
			if o.Overlap[i] >= s {
				o.Overlap[i] = 0 // a tile of one pixel cannot overlap
			}
		}
	}
	if o.Batch < 0 {
		return o, fmt.Errorf("tiling: batch %d, want 0 or more", o.Batch)
	}
	if o.Batch == 0 {
		o.Batch = 1
	}
	if o.Blend != Linear && o.Blend != Gaussian {
		return o, fmt.Errorf("tiling: unknown blend %d", int(o.Blend))
	}
	return o, nil
}

// tiled is the Denoiser returned by Tiled.
type tiled struct {
	model ugo.Denoiser
	opts  Options
	work  modelcall.FreeList[*work]
}

// Tiled returns a Denoiser that runs model on overlapping tiles of
// opts.Size and blends the predictions: MultiDiffusion (Bar-Tal et al.,
// arXiv 2302.08113) and Mixture of Diffusers (Jiménez, arXiv 2302.02412)
// over an opaque model. Tiles cover the last two axes (H, W) of NCHW and
// NCFHW samples; each tile call takes the tile of every sample of the batch
// at timesteps t, and its context carries the ugo.Region of the tile (its
// Offset in the sample, the sample's Size) composed with a region already
// on the caller's context, so that a backend can build inputs that depend
// on it.
//
// The prediction at a position is the weighted mean of the predictions of
// the tiles covering it, with the weights of opts.Blend normalised to sum
// to 1. Where one tile covers the whole sample, the call goes to model
// unchanged: the result is model's bit for bit. A model whose prediction at
// a position depends only on the input there gives the same result tiled
// and untiled, up to float32 rounding of the weights.
//
// Tiled returns an error for a nil model and invalid options. The returned
// Denoiser checks ctx between batches of tiles, is safe for concurrent use
// when model is, and keeps one set of buffers per sample shape and
// concurrent caller, of opts.Batch tiles: once they exist it allocates
// nothing per call.
func Tiled(model ugo.Denoiser, opts Options) (ugo.Denoiser, error) {
	if err := ugo.CheckDenoiser("tiling: model", model); err != nil {
		return nil, err
	}
	o, err := opts.validate()
	if err != nil {
		return nil, err
	}
	return &tiled{model: model, opts: o}, nil
}

// FillsCPU implements ugo.CPUFiller with the answer of the wrapped model:
// a tile call keeps the cores as busy as a call of the model does, so that
// middleware above (Upsample Guidance) runs its calls one after the other
// or concurrently as it would for the model itself. Options.Batch tile
// calls still run concurrently.
func (d *tiled) FillsCPU() bool { return ugo.FillsCPU(d.model) }

// work holds the buffers of one sample shape.
type work struct {
	ay, ax    *axis
	outer     int // product of the axes before H and W
	h, w      int // sample
	th, tw    int // tile
	slots     []slot
	lastShift [2]int // grid of ay, ax (-1: even)
}

// slot is one tile call in flight.
type slot struct {
	x, out *tensor.Dense
	iy, ix int
	ctx    ugo.RegionContext // the call's context: the caller's and the tile's region
	call   modelcall.Call
}

// PredictNoise implements ugo.Denoiser.
func (d *tiled) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	shape, err := checkCall(dst, x, t)
	if err != nil {
		return err
	}
	r := len(shape)
	h, w := shape[r-2], shape[r-1]
	if h <= d.opts.Size[0] && w <= d.opts.Size[1] {
		return d.model.PredictNoise(ctx, dst, x, t)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ws, err := d.workspace(shape)
	if err != nil {
		return err
	}
	defer d.work.Put(shape, ws)

	if d.opts.Jitter {
		sy, sx := jitter(d.opts.Seed, t[0], ws.ay.stride(), ws.ax.stride())
		if ws.lastShift != [2]int{sy, sx} {
			ws.ay.shifted(sy)
			ws.ax.shifted(sx)
			ws.lastShift = [2]int{sy, sx}
		}
	}
	outer := ugo.RegionOf(ctx, h, w)
	ds, xs := dst.Float32s(), x.Float32s()
	clear(ds)
	ny, nx := len(ws.ay.starts), len(ws.ax.starts)
	n := ny * nx
	for first := 0; first < n; first += len(ws.slots) {
		if err := ctx.Err(); err != nil {
			return err
		}
		group := ws.slots[:min(len(ws.slots), n-first)]
		var err0 error // the first tile's call runs on this goroutine
		for i := range group {
			s := &group[i]
			s.iy, s.ix = (first+i)/nx, (first+i)%nx
			crop(s.x.Float32s(), xs, ws.outer, h, w, ws.ay.starts[s.iy], ws.ax.starts[s.ix], ws.th, ws.tw)
			s.ctx.Context, s.ctx.Region = ctx, outer.Window(ws.ay.starts[s.iy], ws.ax.starts[s.ix])
			if i > 0 {
				c := &s.call
				c.Ctx, c.Model, c.Dst, c.X, c.T = &s.ctx, d.model, s.out, s.x, t
				c.Start()
				continue
			}
			err0 = d.model.PredictNoise(&s.ctx, s.out, s.x, t)
		}
		var firstErr error
		for i := range group {
			s := &group[i]
			var err error
			if i > 0 {
				err = s.call.Wait()
			} else {
				err = err0
			}
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("tiling: tile at (%d, %d) of a %dx%d sample: %w", ws.ay.starts[s.iy], ws.ax.starts[s.ix], h, w, err)
			}
		}
		for i := range group {
			group[i].ctx.Context = nil // do not keep the caller's context
		}
		if firstErr != nil {
			return firstErr
		}
		for i := range group {
			s := &group[i]
			blend(ds, s.out.Float32s(), ws.outer, h, w, ws.ay.starts[s.iy], ws.ax.starts[s.ix], ws.ay.weights[s.iy], ws.ax.weights[s.ix])
		}
	}
	return nil
}

// crop copies the tile at (y0, x0) of size th x tw from src (outer planes of
// h x w) into dst (outer planes of th x tw).
func crop(dst, src []float32, outer, h, w, y0, x0, th, tw int) {
	for o := range outer {
		for y := range th {
			s := (o*h+y0+y)*w + x0
			copy(dst[(o*th+y)*tw:(o*th+y+1)*tw], src[s:s+tw])
		}
	}
}

// blend adds the tile prediction p (outer planes of len(wy) x len(wx)),
// weighted by wy[y]*wx[x], into dst (outer planes of h x w) at (y0, x0).
func blend(dst, p []float32, outer, h, w, y0, x0 int, wy, wx []float32) {
	th, tw := len(wy), len(wx)
	for o := range outer {
		for y, a := range wy {
			d := dst[(o*h+y0+y)*w+x0 : (o*h+y0+y)*w+x0+tw]
			row := p[(o*th+y)*tw : (o*th+y+1)*tw]
			for k, v := range row {
				d[k] += a * wx[k] * v
			}
		}
	}
}

// workspace returns buffers for shape, reusing a free set when there is one.
func (d *tiled) workspace(shape []int) (*work, error) {
	if ws, ok := d.work.Get(shape); ok {
		return ws, nil
	}
	r := len(shape)
	h, w := shape[r-2], shape[r-1]
	outer := 1
	for _, s := range shape[:r-2] {
		outer *= s
	}
	th, tw := min(d.opts.Size[0], h), min(d.opts.Size[1], w)
	tile := append(append([]int(nil), shape[:r-2]...), th, tw)
	if need := ugo.TensorBytes(2*d.opts.Batch, tile...); need > ugo.MemoryLimit() {
		return nil, ugo.CheckMemory(fmt.Sprintf("tiling: %d tiles %v in flight", d.opts.Batch, tile), need)
	}
	ws := &work{
		ay:    newAxis(h, d.opts.Size[0], d.opts.Overlap[0], d.opts.Blend),
		ax:    newAxis(w, d.opts.Size[1], d.opts.Overlap[1], d.opts.Blend),
		outer: outer, h: h, w: w, th: th, tw: tw,
		slots:     make([]slot, d.opts.Batch),
		lastShift: [2]int{-1, -1},
	}
	ws.ay.even()
	ws.ax.even()
	for i := range ws.slots {
		ws.slots[i].x = newTensor(tile)
		ws.slots[i].out = newTensor(tile)
	}
	return ws, nil
}

// newTensor wraps a fresh float32 buffer of the given shape.
func newTensor(shape []int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}
