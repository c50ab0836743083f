package superres_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/superres"
	"github.com/ugo-diffusion/ugo/upscale"
)

func TestMain(m *testing.M) {
	ortest.UseRepoLibrary()
	os.Exit(m.Run())
}

func modelPath(scale int) string {
	return filepath.Join("..", "testdata", "models", fmt.Sprintf("esrgan_slim_x%d.onnx", scale))
}

func open(t *testing.T, scale int, o superres.Options) *superres.Model {
	t.Helper()
	ortest.Require(t)
	o.Scale = scale
	m, err := superres.Open(modelPath(scale), o, onnx.WithThreads(1, 1))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// nhwcToNCHW and back, for the goldens (stored as the Keras model sees them).
func nhwcToNCHW(src []float32, n, h, w, c int) *tensor.Dense {
	dst := make([]float32, len(src))
	for k := range n {
		for y := range h {
			for x := range w {
				for ch := range c {
					dst[((k*c+ch)*h+y)*w+x] = src[((k*h+y)*w+x)*c+ch]
				}
			}
		}
	}
	return tensor.New(tensor.WithShape(n, c, h, w), tensor.WithBacking(dst))
}

// The converted models against tools/esrgan/reference.py, a NumPy forward
// pass of the Keras graph, on a crop of a real photograph, whole and tiled.
func TestMatchesNumPyForward(t *testing.T) {
	var index struct {
		Scales map[string]struct {
			File          string
			Input, Output []int
		}
	}
	raw, err := os.ReadFile("../testdata/esrgan/goldens.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &index))
	require.Len(t, index.Scales, 4)
	for _, scale := range []int{2, 3, 4, 8} {
		g := index.Scales[fmt.Sprint(scale)]
		blob, err := os.ReadFile(filepath.Join("../testdata/esrgan", g.File))
		require.NoError(t, err)
		vals := make([]float32, len(blob)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
		}
		in, out := g.Input, g.Output
		nin := in[0] * in[1] * in[2] * in[3]
		require.Equal(t, nin+out[0]*out[1]*out[2]*out[3], len(vals))
		x := nhwcToNCHW(vals[:nin], in[0], in[1], in[2], in[3])
		want := nhwcToNCHW(vals[nin:], out[0], out[1], out[2], out[3]).Float32s()
		for _, tc := range []struct {
			name          string
			tile, overlap int
		}{{"whole", -1, 0}, {"tiles of 7, overlap 12", 7, 12}} {
			m := open(t, scale, superres.Options{SampleRange: [2]float32{0, 255}, Unclipped: true, Tile: tc.tile, Overlap: tc.overlap})
			y, err := m.Upscale(context.Background(), x)
			require.NoError(t, err)
			var worst float64
			for i, v := range y.Float32s() {
				worst = max(worst, math.Abs(float64(v-want[i])))
			}
			t.Logf("x%d %s: max abs diff %.2g (values in [0, 255])", scale, tc.name, worst)
			require.Less(t, worst, 2e-3, "x%d %s", scale, tc.name)
		}
	}
}

func readRGB(t *testing.T, path string) *tensor.Dense {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return rgbTensor(img)
}

func rgbTensor(img image.Image) *tensor.Dense {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	data := make([]float32, 3*h*w)
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, v := range []uint32{r, g, bl} {
				data[(c*h+y)*w+x] = float32(v >> 8)
			}
		}
	}
	return tensor.New(tensor.WithShape(1, 3, h, w), tensor.WithBacking(data))
}

func round8(v float32) float32 { return float32(math.Round(float64(min(max(v, 0), 255)))) }

// The x2 model on the image UpscalerJS ships as its fixture gives the
// upscaled image UpscalerJS ships as its own result (TF.js in the browser),
// to 8-bit rounding.
func TestMatchesUpscalerJS(t *testing.T) {
	m := open(t, 2, superres.Options{SampleRange: [2]float32{0, 255}})
	y, err := m.Upscale(context.Background(), readRGB(t, "../testdata/esrgan/upscalerjs_fixture.png"))
	require.NoError(t, err)
	want := readRGB(t, "../testdata/esrgan/upscalerjs_x2.png").Float32s()
	require.Len(t, y.Float32s(), len(want))
	differ := 0
	for i, v := range y.Float32s() {
		d := math.Abs(float64(round8(v) - want[i]))
		require.LessOrEqual(t, d, 1.0, "element %d", i)
		if d > 0 {
			differ++
		}
	}
	t.Logf("%d of %d 8-bit values differ by 1, none by more", differ, len(want))
	require.Less(t, differ, len(want)/1000)
}

func psnr(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(round8(a[i]) - round8(b[i]))
		se += d * d
	}
	return 10 * math.Log10(255*255/(se/float64(len(a))))
}

// Restoring a real photograph downscaled by 4 (a 128x128 crop of skimage's
// astronaut): the model restores it about as well as bicubic in PSNR (this
// slim model does not beat it: tools/esrgan/evaluate.py scores it on whole
// photographs) and far better than nearest-neighbour repetition; grey
// input through the RGB model stays grey and as good.
func TestRestoresPhotograph(t *testing.T) {
	ctx := context.Background()
	hr := readRGB(t, "../testdata/esrgan/astronaut_128.png")
	lr, err := resize.To(resize.Bicubic, hr, 32, 32)
	require.NoError(t, err)
	for i, v := range lr.Float32s() {
		lr.Float32s()[i] = round8(v)
	}
	m := open(t, 4, superres.Options{SampleRange: [2]float32{0, 255}, Tile: 16})
	sr, err := m.Upscale(ctx, lr)
	require.NoError(t, err)
	bic, err := resize.To(resize.Bicubic, lr, 128, 128)
	require.NoError(t, err)
	near, err := resize.To(resize.Nearest, lr, 128, 128)
	require.NoError(t, err)
	pSR, pBic, pNear := psnr(hr.Float32s(), sr.Float32s()), psnr(hr.Float32s(), bic.Float32s()), psnr(hr.Float32s(), near.Float32s())
	t.Logf("x4 PSNR: ESRGAN %.2f dB, bicubic %.2f dB, nearest %.2f dB", pSR, pBic, pNear)
	require.Greater(t, pSR, pNear+1)
	require.Greater(t, pSR, pBic-0.5)

	// The grey version of the photograph, through the RGB model.
	grey := func(x *tensor.Dense) *tensor.Dense {
		s := x.Shape()
		p := s[2] * s[3]
		g := make([]float32, p)
		for i := range g {
			g[i] = (x.Float32s()[i] + x.Float32s()[p+i] + x.Float32s()[2*p+i]) / 3
		}
		return tensor.New(tensor.WithShape(1, 1, s[2], s[3]), tensor.WithBacking(g))
	}
	gsr, err := m.Upscale(ctx, grey(lr))
	require.NoError(t, err)
	gbic, err := resize.To(resize.Bicubic, grey(lr), 128, 128)
	require.NoError(t, err)
	pg, pgb := psnr(grey(hr).Float32s(), gsr.Float32s()), psnr(grey(hr).Float32s(), gbic.Float32s())
	t.Logf("x4 PSNR, grey: ESRGAN %.2f dB, bicubic %.2f dB", pg, pgb)
	require.Greater(t, pg, pgb-0.5)
}

// ESRGAN x4, then SDEdit refinement with Structure Guidance, as one
// upscale pipeline on the shipped Fashion-MNIST model: the stage's output
// is the model's upscale of the native samples, and the refinement stays
// close to it at low strength.
func TestESRGANThenRefine(t *testing.T) {
	ctx := context.Background()
	ortest.Require(t)
	unet, err := onnx.Open("../testdata/models/fashion_unet.onnx", onnx.WithThreads(1, 1))
	require.NoError(t, err)
	defer unet.Close()
	ddim, err := sampler.NewDDIM(schedule.DefaultConfig())
	require.NoError(t, err)
	m := open(t, 4, superres.Options{})
	s := upscale.Sampling{Model: unet, Schedule: schedule.Linear(1000, 1e-4, 0.02), Solver: ddim, Steps: 10,
		Channels: 1, Trained: [2]int{28, 28}, Noise: noise.TorchSeeds(1, 2)}
	ug := guidance.DefaultUpsampleOptions()
	ug.Factors = nil
	outs, err := upscale.Run(ctx, s, nil,
		upscale.Generate{Height: 28, Width: 28},
		superres.Stage{Model: m},
		upscale.Refine{Height: 112, Width: 112, Strength: 0.3, Upsample: &ug, Structure: &guidance.StructureOptions{}})
	require.NoError(t, err)
	require.Len(t, outs, 3)
	require.Equal(t, []int{2, 1, 112, 112}, []int(outs[2].Shape()))
	direct, err := m.Upscale(ctx, outs[0])
	require.NoError(t, err)
	require.Equal(t, direct.Float32s(), outs[1].Float32s())
	var mse, spread float64
	for i, v := range outs[2].Float32s() {
		require.False(t, math.IsNaN(float64(v)))
		d := float64(v - outs[1].Float32s()[i])
		mse += d * d
		spread += float64(outs[1].Float32s()[i] * outs[1].Float32s()[i])
	}
	n := float64(outs[2].Shape().TotalSize())
	t.Logf("refinement vs ESRGAN output: RMS %.3f (ESRGAN output RMS %.3f)", math.Sqrt(mse/n), math.Sqrt(spread/n))
	require.Less(t, math.Sqrt(mse/n), 0.25)
}

func TestOpenErrors(t *testing.T) {
	ortest.Require(t)
	_, err := superres.Open(modelPath(2), superres.Options{})
	require.ErrorContains(t, err, "Scale")
	_, err = superres.Open(modelPath(2), superres.Options{Scale: 2, Layout: superres.NCHW})
	require.ErrorContains(t, err, "set Options.Layout to NHWC")
	_, err = superres.Open(modelPath(2), superres.Options{Scale: 2, Channels: 1})
	require.ErrorContains(t, err, "channels")
	_, err = superres.Open(modelPath(2), superres.Options{Scale: 2, Input: "x"})
	require.ErrorContains(t, err, "no input")
	_, err = superres.Open("../testdata/models/fashion_unet.onnx", superres.Options{Scale: 2})
	require.ErrorContains(t, err, "inputs")
	// A wrong scale is caught by the runtime on the first call.
	m, err := superres.Open(modelPath(2), superres.Options{Scale: 3})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Upscale(context.Background(), tensor.New(tensor.WithShape(1, 3, 8, 8), tensor.WithBacking(make([]float32, 192))))
	require.Error(t, err)
}
