package superres

import (
	"context"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// Layout is the memory order of a model's image tensors.
type Layout int

const (
	// NHWC is channels-last, [N, H, W, C]: Keras and TensorFlow.js models,
	// the esrgan-slim conversions.
	NHWC Layout = iota
	// NCHW is channels-first, [N, C, H, W]: PyTorch exports.
	NCHW
)

// String returns "NHWC" or "NCHW".
func (l Layout) String() string {
	switch l {
	case NHWC:
		return "NHWC"
	case NCHW:
		return "NCHW"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Defaults of Options.
const (
	// DefaultTileOutput is the default output size, in pixels, of a tile's
	// core: Options.Tile defaults to DefaultTileOutput / Scale input pixels.
	DefaultTileOutput = 256
	// DefaultOverlap is the default number of input pixels of context on
	// each side of a tile's core; the esrgan-slim networks see 10.
	DefaultOverlap = 16
	// DefaultBatch is the default number of images (or grey planes) per
	// model call.
	DefaultBatch = 4
)

// Options describes a super-resolution model and how to run it.
type Options struct {
	// Scale is the model's upscaling factor (the output is Scale times the
	// input on both axes). Required.
	Scale int
	// Layout is the order of the model's input and output; the zero value
	// is NHWC.
	Layout Layout
	// Channels is the model's number of channels, 3 (RGB) or 1; 0 takes it
	// from the model's input when that dimension is fixed, else 3.
	Channels int
	// Range is the model's value range [lo, hi] (the esrgan-slim models
	// take and return [0, 255]); the zero value means [0, 255].
	Range [2]float32
	// SampleRange is the value range of the samples given to Upscale and
	// returned by it; the zero value means [-1, 1], the range of pixel
	// diffusion models' samples and of VAE-decoded images.
	SampleRange [2]float32
	// Unclipped keeps model outputs outside Range; by default they are
	// clipped to it, as UpscalerJS does.
	Unclipped bool
	// Input and Output name the graph's image input and output; "" means
	// the only one.
	Input, Output string
	// Tile is the size, in input pixels, of the square core of a tile: the
	// image is cut into cores of at most Tile x Tile, each run with
	// Overlap pixels of context on every side (where the image has them)
	// and only the core's output kept, so memory is bounded by the tile
	// size whatever the image size. 0 means DefaultTileOutput/Scale (at
	// least 8); a negative value runs whole images.
	Tile int
	// Overlap is the context, in input pixels, around each core. With an
	// Overlap at least the network's receptive radius, tiled and whole
	// runs agree to float rounding. 0 means DefaultOverlap; a negative
	// value means none.
	Overlap int
	// Batch is the number of images (or grey planes) per model call; 0
	// means DefaultBatch.
	Batch int
}

// A net runs a model on a batch in the model's layout and range: in has
// shape inShape, out has room for outShape.
type net interface {
	run(ctx context.Context, in []float32, inShape []int, out []float32, outShape []int) error
	close() error
}

// Model is a super-resolution network ready to upscale samples. It is safe
// for concurrent use when its network is (ONNX models are).
type Model struct {
	net  net
	opts Options
}

// newModel validates o, fills in the defaults and wraps n.
func newModel(n net, o Options) (*Model, error) {
	if o.Scale <= 0 {
		return nil, fmt.Errorf("superres: Scale %d, want a positive factor", o.Scale)
	}
	if o.Layout != NHWC && o.Layout != NCHW {
		return nil, fmt.Errorf("superres: unknown %v", o.Layout)
	}
	if o.Channels == 0 {
		o.Channels = 3
	}
	if o.Channels != 1 && o.Channels != 3 {
		return nil, fmt.Errorf("superres: model with %d channels, want 1 or 3", o.Channels)
	}
	if o.Range == [2]float32{} {
		o.Range = [2]float32{0, 255}
	}
	if o.SampleRange == [2]float32{} {
		o.SampleRange = [2]float32{-1, 1}
	}
	for _, r := range [][2]float32{o.Range, o.SampleRange} {
		if !(r[0] < r[1]) || math.IsInf(float64(r[1]-r[0]), 0) {
			return nil, fmt.Errorf("superres: value range %v, want finite lo < hi", r)
		}
	}
	if o.Tile == 0 {
		o.Tile = max(DefaultTileOutput/o.Scale, 8)
	}
	if o.Overlap == 0 {
		o.Overlap = DefaultOverlap
	}
	o.Overlap = max(o.Overlap, 0)
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Batch < 0 {
		return nil, fmt.Errorf("superres: Batch %d, want >= 0", o.Batch)
	}
	return &Model{net: n, opts: o}, nil
}

// Options returns the model's options with the defaults filled in.
func (m *Model) Options() Options {
	if m == nil {
		return Options{}
	}
	return m.opts
}

// Scale returns the model's upscaling factor.
func (m *Model) Scale() int {
	if m == nil {
		return 0
	}
	return m.opts.Scale
}

// errNil is returned by the methods of a nil *Model (a failed Open).
var errNil = fmt.Errorf("superres: nil Model (a failed Open?): %w", ugo.ErrNilDenoiser)

// Close releases the model.
func (m *Model) Close() error {
	if m == nil || m.net == nil {
		return nil
	}
	return m.net.close()
}

// Upscale returns x upscaled by the model's factor: see UpscaleTo.
func (m *Model) Upscale(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error) {
	if m == nil || m.net == nil {
		return nil, errNil
	}
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if len(shape) != 4 {
		return nil, &ugo.ShapeError{What: "x", Got: shape, Want: "rank 4 (N, C, H, W)"}
	}
	s := m.opts.Scale
	if shape[2] > math.MaxInt32/s || shape[3] > math.MaxInt32/s {
		return nil, fmt.Errorf("superres: %dx%d upscaled by %d is too large", shape[2], shape[3], s)
	}
	if need := ugo.TensorBytes(1, shape[0], shape[1], shape[2]*s, shape[3]*s); need > ugo.MemoryLimit() {
		return nil, ugo.CheckMemory(fmt.Sprintf("superres: %v upscaled by %d", shape, s), need)
	}
	n := shape[0] * shape[1] * shape[2] * s * shape[3] * s
	dst := tensor.New(tensor.WithShape(shape[0], shape[1], shape[2]*s, shape[3]*s), tensor.WithBacking(make([]float32, n)))
	if err := m.UpscaleTo(ctx, dst, x); err != nil {
		return nil, err
	}
	return dst, nil
}

// UpscaleTo writes into dst [N, C, s*H, s*W] the samples x [N, C, H, W]
// (values in Options.SampleRange) upscaled by the model's factor s.
//
// Samples are mapped linearly from SampleRange to the model's Range, laid
// out as the model wants, run tile by tile (see Options.Tile), and the
// outputs mapped back (clipped to Range unless Unclipped). Channels: when C
// equals the model's channels the images go through as they are; a grey
// sample (C = 1) given to an RGB model is fed as three equal channels and
// the output's channels are averaged back to one; each channel of an RGB
// sample given to a grey model is upscaled as its own image. Other channel
// counts are an error.
func (m *Model) UpscaleTo(ctx context.Context, dst, x *tensor.Dense) error {
	if m == nil || m.net == nil {
		return errNil
	}
	xs, err := ugo.CheckSample("x", x)
	if err != nil {
		return err
	}
	if len(xs) != 4 {
		return &ugo.ShapeError{What: "x", Got: xs, Want: "rank 4 (N, C, H, W)"}
	}
	ds, err := ugo.CheckSample("dst", dst)
	if err != nil {
		return err
	}
	if ugo.Overlapping(dst, x) {
		return fmt.Errorf("superres: %w: UpscaleTo reads x while it writes dst", ugo.ErrAlias)
	}
	n, c, h, w := xs[0], xs[1], xs[2], xs[3]
	s := m.opts.Scale
	if len(ds) != 4 || ds[0] != n || ds[1] != c || ds[2] != h*s || ds[3] != w*s {
		return &ugo.ShapeError{What: "dst", Got: ds, Want: fmt.Sprintf("[%d %d %d %d] (x upscaled by %d)", n, c, h*s, w*s, s)}
	}
	mc := m.opts.Channels
	var groups, per int // model images per sample and sample channels per model image
	switch {
	case c == mc:
		groups, per = 1, c
	case c == 1 && mc == 3:
		groups, per = 1, 1
	case c == 3 && mc == 1:
		groups, per = 3, 1
	default:
		return &ugo.ShapeError{What: "x", Got: xs, Want: fmt.Sprintf("1 or 3 channels for a model with %d", mc)}
	}
	u := upscaler{m: m, x: x.Float32s(), dst: dst.Float32s(), c: c, h: h, w: w, groups: groups, per: per}
	items := n * groups
	for first := 0; first < items; first += m.opts.Batch {
		if err := u.batch(ctx, first, min(items, first+m.opts.Batch)); err != nil {
			return err
		}
	}
	return nil
}

// upscaler holds one UpscaleTo call.
type upscaler struct {
	m       *Model
	x, dst  []float32
	c, h, w int
	groups  int       // model images per sample
	per     int       // sample channels per model image
	in, out []float32 // model-layout buffers, reused across tiles
}

// batch upscales model images [first, last) (image i is sample i/groups,
// channel (i%groups)*per), tile by tile.
func (u *upscaler) batch(ctx context.Context, first, last int) error {
	o := u.m.opts
	tile := o.Tile
	if tile < 0 {
		tile = max(u.h, u.w)
	}
	for y0 := 0; y0 < u.h; y0 += tile {
		for x0 := 0; x0 < u.w; x0 += tile {
			y1, x1 := min(y0+tile, u.h), min(x0+tile, u.w)
			core := [4]int{y0, y1, x0, x1}
			region := [4]int{max(0, y0-o.Overlap), min(u.h, y1+o.Overlap), max(0, x0-o.Overlap), min(u.w, x1+o.Overlap)}
			if err := u.tile(ctx, first, last, core, region); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// tile runs model images [first, last) on the input region [ry0, ry1) x
// [rx0, rx1) and writes the output of the core [cy0, cy1) x [cx0, cx1).
func (u *upscaler) tile(ctx context.Context, first, last int, core, region [4]int) error {
	o := u.m.opts
	s, mc := o.Scale, o.Channels
	b := last - first
	rh, rw := region[1]-region[0], region[3]-region[2]
	nin := b * mc * rh * rw
	nout := nin * s * s
	if cap(u.in) < nin {
		u.in = make([]float32, nin)
	}
	if cap(u.out) < nout {
		u.out = make([]float32, nout)
	}
	in, out := u.in[:nin], u.out[:nout]
	lo, hi := o.Range[0], o.Range[1]
	slo, shi := o.SampleRange[0], o.SampleRange[1]
	toModel := (hi - lo) / (shi - slo)
	fromModel := (shi - slo) / (hi - lo)
	plane := u.h * u.w

	// index returns the offset of (image k, channel ch, row y, column x) in
	// a model-layout buffer of b images of height hh and width ww.
	index := func(k, ch, y, x, hh, ww int) int {
		if o.Layout == NHWC {
			return ((k*hh+y)*ww+x)*mc + ch
		}
		return ((k*mc+ch)*hh+y)*ww + x
	}
	for k := range b {
		item := first + k
		n, g := item/u.groups, item%u.groups
		for ch := range mc {
			sc := g*u.per + min(ch, u.per-1) // a grey sample feeds every model channel
			src := u.x[(n*u.c+sc)*plane:]
			for y := range rh {
				row := src[(region[0]+y)*u.w+region[2]:]
				for x := range rw {
					in[index(k, ch, y, x, rh, rw)] = lo + (row[x]-slo)*toModel
				}
			}
		}
	}
	inShape, outShape := []int{b, rh, rw, mc}, []int{b, rh * s, rw * s, mc}
	if o.Layout == NCHW {
		inShape, outShape = []int{b, mc, rh, rw}, []int{b, mc, rh * s, rw * s}
	}
	if err := u.m.net.run(ctx, in, inShape, out, outShape); err != nil {
		return err
	}
	oh, ow := rh*s, rw*s
	dh, dw := u.h*s, u.w*s
	oy, ox := (core[0]-region[0])*s, (core[2]-region[2])*s
	ch, cw := (core[1]-core[0])*s, (core[3]-core[2])*s
	for k := range b {
		item := first + k
		n, g := item/u.groups, item%u.groups
		for pc := range u.per {
			dc := g*u.per + pc
			dplane := u.dst[(n*u.c+dc)*dh*dw:]
			for y := range ch {
				drow := dplane[(core[0]*s+y)*dw+core[2]*s:]
				for x := range cw {
					var v float32
					if u.per == 1 && mc == 3 && u.c == 1 { // grey from RGB: the channels' mean
						v = (out[index(k, 0, oy+y, ox+x, oh, ow)] + out[index(k, 1, oy+y, ox+x, oh, ow)] + out[index(k, 2, oy+y, ox+x, oh, ow)]) / 3
					} else {
						v = out[index(k, pc, oy+y, ox+x, oh, ow)]
					}
					if !o.Unclipped {
						v = min(max(v, lo), hi)
					}
					drow[x] = slo + (v-lo)*fromModel
				}
			}
		}
	}
	return nil
}
