package video

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
)

const (
	videoModel = "../../../testdata/models/fashion_video.onnx"
	imageModel = "../../../testdata/models/fashion_unet.onnx"
	classifier = "../../../testdata/models/fashion_classifier.onnx"
	testImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
)

func TestMain(m *testing.M) {
	ortest.UseRepoLibrary()
	os.Exit(m.Run())
}

func openModel(t *testing.T, path string) *onnx.Model {
	t.Helper()
	ortest.Require(t)
	m, err := onnx.Open(path, onnx.WithThreads(1, 1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func testClips(t *testing.T, n, frames int, seed uint64) []float32 {
	t.Helper()
	if _, err := os.Stat(testImages); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Fashion-MNIST test images are required under CI (dataset-fashion-mnist): %v", err)
		}
		t.Skip("Fashion-MNIST not installed")
	}
	imgs, count, h, w, err := fashion.ReadIDXImages(testImages)
	require.NoError(t, err)
	clips, err := Clips(imgs, count, h, w, n, frames, seed)
	require.NoError(t, err)
	return clips
}

// The shipped video model takes N,1,F,H,W samples with any frame count and
// size, and ONNX Runtime reproduces torch's output
// (testdata/video/model_golden.json, from tools/video/export.py) at 8 and
// 16 frames of 28x28 and 8 frames of 56x56, from torch-identical noise.
func TestVideoModelMatchesTorch(t *testing.T) {
	m := openModel(t, videoModel)
	info := m.Info()
	require.Len(t, info.Sample.Dims, 5)
	require.True(t, info.DynamicFrames())
	require.True(t, info.DynamicSize())
	raw, err := os.ReadFile("../../../testdata/video/model_golden.json")
	require.NoError(t, err)
	var g struct {
		Cases []struct {
			Seed      uint64
			Shape     []int
			T         float32
			Sum       float64
			Positions []int
			Values    []float32
		}
	}
	require.NoError(t, json.Unmarshal(raw, &g))
	require.Len(t, g.Cases, 3)
	for _, c := range g.Cases {
		x, err := noise.NewTensor(noise.NewTorchCPU(c.Seed), c.Shape...)
		require.NoError(t, err)
		eps := tensor.New(tensor.WithShape(c.Shape...), tensor.Of(tensor.Float32))
		ts := make([]float32, c.Shape[0])
		for i := range ts {
			ts[i] = c.T
		}
		require.NoError(t, m.PredictNoise(context.Background(), eps, x, ts))
		out := eps.Float32s()
		var sum float64
		for _, v := range out {
			sum += float64(v)
		}
		require.InDelta(t, c.Sum, sum, 1e-6*float64(len(out)), "shape %v: sum", c.Shape)
		for i, p := range c.Positions {
			require.InDelta(t, c.Values[i], out[p], 1e-4, "shape %v: element %d", c.Shape, p)
		}
	}
}

// noiseMSE returns the model's noise-prediction MSE on clips (n,1,f,28,28)
// noised to timestep tt with torch-seeded noise.
func noiseMSE(t *testing.T, m *onnx.Model, clips []float32, n, f int, tt float64, perFrame bool) float64 {
	t.Helper()
	abar := fashion.Schedule().AlphaBar(tt)
	eps, err := noise.NewTensor(noise.NewTorchCPU(9), n, 1, f, TrainedSize, TrainedSize)
	require.NoError(t, err)
	e := eps.Float32s()
	xt := make([]float32, len(clips))
	for i := range xt {
		xt[i] = float32(math.Sqrt(abar)*float64(clips[i]) + math.Sqrt(1-abar)*float64(e[i]))
	}
	shape := []int{n, 1, f, TrainedSize, TrainedSize}
	ts := make([]float32, n)
	if perFrame { // the image model on every frame alone
		shape = []int{n * f, 1, TrainedSize, TrainedSize}
		ts = make([]float32, n*f)
	}
	for i := range ts {
		ts[i] = float32(tt)
	}
	x := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(xt))
	out := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	require.NoError(t, m.PredictNoise(context.Background(), out, x, ts))
	var s float64
	for i, v := range out.Float32s() {
		d := float64(v - e[i])
		s += d * d
	}
	return s / float64(len(e))
}

// The temporal layers are trained: on noised real clips (test images, the
// training motions) the video model predicts the noise better than the
// image model it was initialised from, applied to every frame alone, where
// the other frames carry information (t = 300: 0.022 against 0.040; t =
// 600: 0.0037 against 0.0056). Near pure noise (t = 900, MSE 3e-4 either
// way) they tie, and that is only logged.
func TestVideoModelUsesTime(t *testing.T) {
	vm := openModel(t, videoModel)
	im := openModel(t, imageModel)
	const n, f = 8, 8
	clips := testClips(t, n, f, 77)
	for _, tt := range []float64{300, 600, 900} {
		mv := noiseMSE(t, vm, clips, n, f, tt, false)
		mi := noiseMSE(t, im, clips, n, f, tt, true)
		t.Logf("t = %v: video model MSE %.5f, image model per frame %.5f", tt, mv, mi)
		if tt < 900 {
			require.Less(t, mv, 0.8*mi, "t = %v", tt)
		}
	}
}

// Sixteen frames from a model trained on eight: with Upsample Guidance over
// frames ([2, 1, 1]) consecutive frames differ less and the classifier's
// label changes less often than in plain 16-frame sampling, which runs the
// motion at the trained per-frame speed and drifts between garments. (On
// 48 clips at 20 steps, examples/video measured label changes per frame
// pair 0.24 [0.21, 0.28] guided against 0.38 [0.34, 0.42] plain, and mean
// frame differences 0.095 against 0.120.) Six clips at 10 steps here, the
// same seeds for both: 23 against 36 label changes over 90 frame pairs,
// frame differences 0.090 against 0.111; the assertions leave a margin.
func TestGuidedFramesAreSmoother(t *testing.T) {
	m := openModel(t, videoModel)
	ortest.Require(t)
	cls, err := OpenClassifier(classifier, onnx.WithThreads(1, 1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cls.Close() })
	const n, f = 6, 16
	smp := &Sampler{Model: m, Steps: 10}
	measure := func(guided bool) (changes int, diff float64) {
		x, err := smp.Sample(context.Background(), Setting{Name: "16f", Frames: f, Size: TrainedSize, Guided: guided}, fashion.Seeds(1, n))
		require.NoError(t, err)
		frames, err := Frames28(x)
		require.NoError(t, err)
		labels, _, err := cls.Classify(context.Background(), frames, n*f)
		require.NoError(t, err)
		for _, c := range LabelChanges(labels, n, f) {
			changes += c
		}
		for _, d := range FrameDiffs(frames, n, f) {
			diff += d / float64(n*(f-1))
		}
		return changes, diff
	}
	cp, dp := measure(false)
	cg, dg := measure(true)
	t.Logf("label changes over %d frame pairs: plain %d, guided %d; mean frame difference: plain %.4f, guided %.4f", n*(f-1), cp, cg, dp, dg)
	require.Less(t, dg, 0.9*dp, "mean frame difference")
	require.Less(t, cg+5, cp, "label changes")
}
