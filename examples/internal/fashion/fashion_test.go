package fashion

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
)

const (
	modelFile      = "../../../testdata/models/fashion_unet.onnx"
	classifierFile = "../../../testdata/models/fashion_classifier.onnx"
	testImages     = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
)

func TestMain(m *testing.M) {
	ortest.UseRepoLibrary()
	os.Exit(m.Run())
}

func openModel(t *testing.T) *onnx.Model {
	t.Helper()
	ortest.Require(t)
	m, err := onnx.Open(modelFile)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// The shipped model loads and predicts finite noise of the input's shape at
// the trained size and at 2x and 4x.
func TestShippedModelRunsAtAllSizes(t *testing.T) {
	m := openModel(t)
	info := m.Info()
	require.Equal(t, "x", info.Sample.Name)
	require.Equal(t, "t", info.Timestep.Name)
	require.True(t, info.DynamicSize())
	for _, size := range []int{28, 56, 112} {
		x, err := noise.NewTensor(noise.NewPCG(uint64(size)), 2, 1, size, size)
		require.NoError(t, err)
		eps := tensor.New(tensor.WithShape(2, 1, size, size), tensor.Of(tensor.Float32))
		require.NoError(t, m.PredictNoise(context.Background(), eps, x, []float32{999, 999}))
		var sq float64
		for _, v := range eps.Float32s() {
			require.False(t, math.IsNaN(float64(v)))
			sq += float64(v) * float64(v)
		}
		// At t = 999 the sample is almost pure noise, so a trained model
		// predicts nearly the input itself: unit power.
		rms := math.Sqrt(sq / float64(2*size*size))
		require.InDelta(t, 1, rms, 0.2, "size %d: eps RMS %v", size, rms)
	}
}

// The model is really trained: on noised real test images it predicts the
// noise far better than the trivial predictor (MSE 1 for zero output).
func TestShippedModelDenoisesRealImages(t *testing.T) {
	m := openModel(t)
	if _, err := os.Stat(testImages); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Fashion-MNIST test images are required under CI (dataset-fashion-mnist): %v", err)
		}
		t.Skip("Fashion-MNIST not installed")
	}
	all, _, _, _, err := ReadIDXImages(testImages)
	require.NoError(t, err)
	const n = 32
	imgs := all[:n*784]
	sched := Schedule()
	eps, err := noise.NewTensor(noise.NewTorchCPU(5), n, 1, 28, 28)
	require.NoError(t, err)
	for _, tt := range []float64{100, 500, 900} {
		a := sched.AlphaBar(tt)
		xt := tensor.New(tensor.WithShape(n, 1, 28, 28), tensor.Of(tensor.Float32))
		xd, ed := xt.Float32s(), eps.Float32s()
		for i := range xd {
			xd[i] = float32(math.Sqrt(a))*imgs[i] + float32(math.Sqrt(1-a))*ed[i]
		}
		pred := tensor.New(tensor.WithShape(n, 1, 28, 28), tensor.Of(tensor.Float32))
		require.NoError(t, m.PredictNoise(context.Background(), pred, xt, []float32{float32(tt)}))
		var mse float64
		for i, v := range pred.Float32s() {
			d := float64(v - ed[i])
			mse += d * d
		}
		mse /= float64(len(ed))
		t.Logf("t=%v: noise-prediction MSE %.4f", tt, mse)
		require.Less(t, mse, 0.25, "t=%v", tt)
	}
}

// A short guided run at 2x is deterministic for fixed seeds, differs from
// the unguided run from the same noise, and gives finite images.
func TestGuidedSamplingIsDeterministic(t *testing.T) {
	m := openModel(t)
	ug := guidance.DefaultUpsampleOptions()
	s := &Sampler{Model: m, Steps: 5}
	set := Setting{Name: "56 UG", Size: 56, Guide: &ug}
	seeds := []uint64{7, 8}
	a, err := s.Sample(context.Background(), set, seeds, 0)
	require.NoError(t, err)
	b, err := s.Sample(context.Background(), set, seeds, 0)
	require.NoError(t, err)
	require.Equal(t, a.Float32s(), b.Float32s())
	plain, err := s.Sample(context.Background(), Setting{Name: "56 plain", Size: 56}, seeds, 0)
	require.NoError(t, err)
	require.NotEqual(t, a.Float32s(), plain.Float32s())
	for _, v := range a.Float32s() {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
	}
	// Seeds, not batch positions, decide the noise: image 1 of a batch
	// equals a batch of just its seed.
	one, err := s.Sample(context.Background(), set, seeds[1:], 0)
	require.NoError(t, err)
	require.InDeltaSlice(t, one.Float32s(), a.Float32s()[56*56:], 1e-5)
}

func TestSettingFactor(t *testing.T) {
	for _, tc := range []struct {
		size, want int
		ok         bool
	}{{28, 1, true}, {56, 2, true}, {112, 4, true}, {60, 0, false}, {0, 0, false}} {
		f, err := Setting{Size: tc.size}.Factor()
		if tc.ok {
			require.NoError(t, err)
			require.Equal(t, tc.want, f)
		} else {
			require.Error(t, err)
		}
	}
}

func TestSettingFactorOver(t *testing.T) {
	for _, tc := range []struct {
		size, trained, want int
		ok                  bool
	}{{14, 14, 1, true}, {28, 14, 2, true}, {56, 14, 4, true}, {21, 14, 0, false}, {28, 0, 0, false}, {28, -14, 0, false}} {
		f, err := Setting{Size: tc.size}.FactorOver(tc.trained)
		if tc.ok {
			require.NoError(t, err)
			require.Equal(t, tc.want, f)
		} else {
			require.Error(t, err, "size %d over %d", tc.size, tc.trained)
		}
	}
}
