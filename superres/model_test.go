package superres

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/upscale"
)

// localNet is a small super-resolution network in Go: a 3x3 convolution
// (zero padding, as Keras' "same") mixing the channels, then a
// nearest-neighbour repeat by scale. Its receptive radius is 1 input
// pixel. It reads and writes its own layout, so the tests exercise the
// layout handling of UpscaleTo.
type localNet struct {
	scale, channels int
	layout          Layout
	weights         []float32 // [out][in][3][3]
	bias            []float32
	calls           int
	maxPixels       int // largest input plane seen
}

func newLocalNet(scale, channels int, layout Layout, seed int) *localNet {
	n := &localNet{scale: scale, channels: channels, layout: layout}
	n.weights = make([]float32, channels*channels*9)
	for i := range n.weights {
		n.weights[i] = float32(math.Sin(float64(i*7+seed))) / 4
	}
	n.bias = make([]float32, channels)
	for i := range n.bias {
		n.bias[i] = float32(i+1) * 10
	}
	return n
}

func (n *localNet) at(buf []float32, b, c, y, x, h, w int) float32 {
	if n.layout == NHWC {
		return buf[((b*h+y)*w+x)*n.channels+c]
	}
	return buf[((b*n.channels+c)*h+y)*w+x]
}

func (n *localNet) run(ctx context.Context, in []float32, inShape []int, out []float32, outShape []int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, h, w := inShape[0], inShape[1], inShape[2]
	if n.layout == NCHW {
		h, w = inShape[2], inShape[3]
	}
	n.calls++
	n.maxPixels = max(n.maxPixels, h*w)
	c, s := n.channels, n.scale
	for k := range b {
		for o := range c {
			for y := range h * s {
				for x := range w * s {
					v := n.bias[o]
					for i := range c {
						for dy := -1; dy <= 1; dy++ {
							for dx := -1; dx <= 1; dx++ {
								yy, xx := y/s+dy, x/s+dx
								if yy < 0 || yy >= h || xx < 0 || xx >= w {
									continue
								}
								v += n.weights[((o*c+i)*3+dy+1)*3+dx+1] * n.at(in, k, i, yy, xx, h, w)
							}
						}
					}
					if n.layout == NHWC {
						out[((k*h*s+y)*w*s+x)*c+o] = v
					} else {
						out[((k*c+o)*h*s+y)*w*s+x] = v
					}
				}
			}
		}
	}
	return nil
}

func (n *localNet) close() error { return nil }

func randomSamples(t *rapid.T, shape ...int) *tensor.Dense {
	size := 1
	for _, d := range shape {
		size *= d
	}
	phase := rapid.Float64Range(0, 6).Draw(t, "phase")
	freq := rapid.Float64Range(0.1, 3).Draw(t, "frequency")
	data := make([]float32, size)
	for i := range data {
		data[i] = float32(math.Sin(float64(i)*freq+phase)) * 0.9
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// Tiling with an overlap at least the receptive radius gives exactly the
// whole-image result, for every layout, channel combination, scale, tile
// size and batch.
func TestTilingMatchesWholeImage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		layout := Layout(rapid.IntRange(0, 1).Draw(t, "layout"))
		mc := rapid.SampledFrom([]int{1, 3}).Draw(t, "model channels")
		c := rapid.SampledFrom([]int{1, 3}).Draw(t, "sample channels")
		scale := rapid.IntRange(1, 4).Draw(t, "scale")
		n := rapid.IntRange(1, 3).Draw(t, "n")
		h, w := rapid.IntRange(1, 23).Draw(t, "h"), rapid.IntRange(1, 23).Draw(t, "w")
		tile := rapid.IntRange(1, 12).Draw(t, "tile")
		overlap := rapid.IntRange(1, 4).Draw(t, "overlap")
		batch := rapid.IntRange(1, 5).Draw(t, "batch")
		x := randomSamples(t, n, c, h, w)
		whole, err := newModel(newLocalNet(scale, mc, layout, 3), Options{Scale: scale, Layout: layout, Channels: mc, Tile: -1, Batch: 100})
		require.NoError(t, err)
		net := newLocalNet(scale, mc, layout, 3)
		tiled, err := newModel(net, Options{Scale: scale, Layout: layout, Channels: mc, Tile: tile, Overlap: overlap, Batch: batch})
		require.NoError(t, err)
		want, err := whole.Upscale(context.Background(), x)
		require.NoError(t, err)
		got, err := tiled.Upscale(context.Background(), x)
		require.NoError(t, err)
		if g, w := []int(got.Shape()), []int{n, c, h * scale, w * scale}; !slices.Equal(g, w) {
			t.Fatalf("shape %v, want %v", g, w)
		}
		for i, v := range got.Float32s() {
			if v != want.Float32s()[i] {
				t.Fatalf("element %d: tiled %v, whole %v", i, v, want.Float32s()[i])
			}
		}
		// Memory stays bounded: no call sees more than a tile and its context.
		side := tile + 2*overlap
		if net.maxPixels > side*side {
			t.Fatalf("a call saw %d input pixels, more than a %dx%d tile", net.maxPixels, side, side)
		}
	})
}

// Without context around the tiles the seams show: the overlap matters.
func TestTilingWithoutOverlapDiffers(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 3, 12, 12), tensor.WithBacking(make([]float32, 3*144)))
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(math.Cos(float64(i)))
	}
	run := func(overlap int) []float32 {
		m, err := newModel(newLocalNet(2, 3, NHWC, 1), Options{Scale: 2, Tile: 4, Overlap: overlap})
		require.NoError(t, err)
		y, err := m.Upscale(context.Background(), x)
		require.NoError(t, err)
		return y.Float32s()
	}
	a, b := run(1), run(-1)
	diff := 0
	for i := range a {
		if a[i] != b[i] {
			diff++
		}
	}
	require.Greater(t, diff, 0, "tiles without context must differ at the seams")
}

// identityNet repeats each pixel (nearest neighbour): the model-space image
// upscaled exactly, which makes the range and channel mappings checkable.
type identityNet struct {
	scale, channels int
	add             []float32 // per output channel, in model units
}

func (n identityNet) run(_ context.Context, in []float32, inShape []int, out []float32, _ []int) error {
	b, h, w, c, s := inShape[0], inShape[1], inShape[2], n.channels, n.scale
	for k := range b {
		for y := range h * s {
			for x := range w * s {
				for ch := range c {
					out[((k*h*s+y)*w*s+x)*c+ch] = in[((k*h+y/s)*w+x/s)*c+ch] + n.add[ch]
				}
			}
		}
	}
	return nil
}

func (identityNet) close() error { return nil }

func TestRangesAndChannels(t *testing.T) {
	ctx := context.Background()
	x := tensor.New(tensor.WithShape(2, 3, 2, 2), tensor.WithBacking([]float32{
		-1, -0.5, 0, 0.5, 1, 0.25, -0.25, 0.75, 0, 0, 0, 0,
		0.1, 0.2, 0.3, 0.4, -0.9, -0.8, -0.7, -0.6, 1, 1, -1, -1,
	}))
	nearest := func(src []float32, n, c, h, w, s int) []float32 {
		dst := make([]float32, n*c*h*s*w*s)
		for p := range n * c {
			for y := range h * s {
				for xx := range w * s {
					dst[(p*h*s+y)*w*s+xx] = src[(p*h+y/s)*w+xx/s]
				}
			}
		}
		return dst
	}

	// RGB through an RGB model: the identity, whatever the model's range.
	m, err := newModel(identityNet{2, 3, []float32{0, 0, 0}}, Options{Scale: 2, Range: [2]float32{-3, 5}})
	require.NoError(t, err)
	y, err := m.Upscale(ctx, x)
	require.NoError(t, err)
	require.InDeltaSlice(t, nearest(x.Float32s(), 2, 3, 2, 2, 2), y.Float32s(), 1e-6)

	// Grey through an RGB model: three equal channels in, their mean out.
	g := tensor.New(tensor.WithShape(2, 1, 2, 2), tensor.WithBacking(append([]float32(nil), x.Float32s()[:8]...)))
	m, err = newModel(identityNet{2, 3, []float32{-51, 0, 102}}, Options{Scale: 2}) // shifts of -0.4, 0, +0.8 in [-1, 1]
	require.NoError(t, err)
	y, err = m.Upscale(ctx, g)
	require.NoError(t, err)
	want := nearest(g.Float32s(), 2, 1, 2, 2, 2)
	for i, v := range want {
		// The channels' mean, clipped to the range.
		want[i] = min(max(((v-0.4)+v+(v+0.8))/3, -1), 1)
	}
	require.InDeltaSlice(t, want, y.Float32s(), 1e-6)

	// RGB through a grey model: each channel on its own; clipped, or not.
	for _, unclipped := range []bool{false, true} {
		m, err = newModel(identityNet{2, 1, []float32{51}}, Options{Scale: 2, Channels: 1, Unclipped: unclipped})
		require.NoError(t, err)
		y, err = m.Upscale(ctx, x)
		require.NoError(t, err)
		want = nearest(x.Float32s(), 2, 3, 2, 2, 2)
		for i := range want {
			want[i] += 0.4
			if !unclipped {
				want[i] = min(want[i], 1)
			}
		}
		require.InDeltaSlice(t, want, y.Float32s(), 1e-6)
	}

	// Samples in [0, 1].
	m, err = newModel(identityNet{1, 3, []float32{0, 0, 0}}, Options{Scale: 1, SampleRange: [2]float32{0, 1}})
	require.NoError(t, err)
	u := tensor.New(tensor.WithShape(1, 3, 1, 1), tensor.WithBacking([]float32{0, 0.5, 1}))
	y, err = m.Upscale(ctx, u)
	require.NoError(t, err)
	require.InDeltaSlice(t, []float32{0, 0.5, 1}, y.Float32s(), 1e-6)
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	net := identityNet{2, 3, []float32{0, 0, 0}}
	for _, o := range []Options{
		{Scale: 0},
		{Scale: 2, Layout: Layout(7)},
		{Scale: 2, Channels: 2},
		{Scale: 2, Range: [2]float32{1, 1}},
		{Scale: 2, SampleRange: [2]float32{1, -1}},
		{Scale: 2, Batch: -1},
	} {
		_, err := newModel(net, o)
		require.Error(t, err, "%+v", o)
	}
	m, err := newModel(net, Options{Scale: 2})
	require.NoError(t, err)
	var se *ugo.ShapeError
	_, err = m.Upscale(ctx, nil)
	require.ErrorAs(t, err, &se)
	_, err = m.Upscale(ctx, tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.WithBacking(make([]float32, 32))))
	require.ErrorAs(t, err, &se, "two channels")
	_, err = m.Upscale(ctx, tensor.New(tensor.WithShape(1, 1, 2, 4, 4), tensor.WithBacking(make([]float32, 32))))
	require.ErrorAs(t, err, &se, "rank 5")
	x := tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.WithBacking(make([]float32, 48)))
	err = m.UpscaleTo(ctx, tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.WithBacking(make([]float32, 48))), x)
	require.ErrorAs(t, err, &se, "dst of the input's size")

	_, err = Stage{}.Run(ctx, nil, x)
	require.Error(t, err)
	_, err = Stage{Model: m, Height: -1}.Run(ctx, nil, x)
	require.Error(t, err)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	lm, err := newModel(newLocalNet(2, 3, NHWC, 0), Options{Scale: 2})
	require.NoError(t, err)
	_, err = lm.Upscale(cancelled, x)
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
}

// Stage: the model's output as it is, or resized to the asked size; a
// stage of upscale.Run.
func TestStage(t *testing.T) {
	ctx := context.Background()
	m, err := newModel(newLocalNet(2, 3, NCHW, 5), Options{Scale: 2, Layout: NCHW})
	require.NoError(t, err)
	x := tensor.New(tensor.WithShape(2, 1, 6, 6), tensor.WithBacking(make([]float32, 72)))
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(math.Sin(float64(i) / 3))
	}
	direct, err := m.Upscale(ctx, x)
	require.NoError(t, err)
	outs, err := upscale.Run(ctx, upscale.Sampling{}, x, Stage{Model: m}, Stage{Model: m, Height: 20, Width: 18, Filter: resize.Bilinear})
	require.NoError(t, err)
	require.Equal(t, direct.Float32s(), outs[0].Float32s())
	again, err := m.Upscale(ctx, outs[0])
	require.NoError(t, err)
	want, err := resize.To(resize.Bilinear, again, 20, 18)
	require.NoError(t, err)
	require.Equal(t, want.Float32s(), outs[1].Float32s())
}

// pixelCodec is a codec whose latents are the images average-pooled by 2
// (decode: nearest-neighbour repeat; encode: area pooling), the exact U and
// D pair of Upsample Guidance.
type pixelCodec struct{}

func (pixelCodec) Decode(_ context.Context, z *tensor.Dense) (*tensor.Dense, error) {
	s := z.Shape()
	return resize.To(resize.Nearest, z, s[2]*2, s[3]*2)
}

func (pixelCodec) Encode(_ context.Context, x *tensor.Dense) (*tensor.Dense, error) {
	s := x.Shape()
	return resize.To(resize.Area, x, s[2]/2, s[3]/2)
}

// With a Codec the stage upscales decoded images and encodes the result.
func TestStageCodec(t *testing.T) {
	ctx := context.Background()
	m, err := newModel(newLocalNet(3, 3, NHWC, 2), Options{Scale: 3, Tile: 5})
	require.NoError(t, err)
	z := tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.WithBacking(make([]float32, 48)))
	for i := range z.Float32s() {
		z.Float32s()[i] = float32(math.Cos(float64(i) / 2))
	}
	got, err := Stage{Model: m, Height: 8, Width: 8, Codec: pixelCodec{}}.Run(ctx, nil, z)
	require.NoError(t, err)
	img, err := pixelCodec{}.Decode(ctx, z) // 8x8
	require.NoError(t, err)
	up, err := m.Upscale(ctx, img) // 24x24
	require.NoError(t, err)
	up, err = resize.To(resize.Bicubic, up, 16, 16)
	require.NoError(t, err)
	want, err := pixelCodec{}.Encode(ctx, up)
	require.NoError(t, err)
	require.Equal(t, []int{1, 3, 8, 8}, []int(got.Shape()))
	require.Equal(t, want.Float32s(), got.Float32s())
}
