package fashion

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/metrics"
	"github.com/ugo-diffusion/ugo/onnx"
)

// flowModelFile is the shipped rectified-flow model; FLOW_MODEL overrides it
// (to check a training checkpoint).
func flowModelFile() string {
	if p := os.Getenv("FLOW_MODEL"); p != "" {
		return p
	}
	return "../../../" + FlowModelFile
}

// features returns the shipped classifier's 128-d penultimate features of n
// 28x28 images.
func features(t *testing.T, cls *onnx.Graph, imgs []float32, n int) []float32 {
	t.Helper()
	x := tensor.New(tensor.WithShape(n, 1, 28, 28), tensor.WithBacking(imgs))
	logits := tensor.New(tensor.WithShape(n, 10), tensor.Of(tensor.Float32))
	feat := tensor.New(tensor.WithShape(n, 128), tensor.Of(tensor.Float32))
	require.NoError(t, cls.Run(context.Background(), map[string]*tensor.Dense{"x": x},
		map[string]*tensor.Dense{"logits": logits, "features": feat}))
	return feat.Float32s()
}

// realism scores images by the squared Mahalanobis distance of their
// classifier features under a Gaussian fitted to real test images: about
// the feature dimension (128) for real images, far more for images the
// classifier has never seen the like of.
type realism struct {
	cls  *onnx.Graph
	mean []float64
	chol mat.Cholesky
}

func newRealism(t *testing.T, real []float32, n int) *realism {
	t.Helper()
	cls, err := onnx.OpenGraph(classifierFile)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cls.Close() })
	f := features(t, cls, real, n)
	g, err := metrics.FitGaussian(f, 128)
	require.NoError(t, err)
	cov := mat.NewSymDense(128, nil)
	for i := range 128 {
		for j := i; j < 128; j++ {
			cov.SetSym(i, j, g.Cov.At(i, j))
		}
		cov.SetSym(i, i, cov.At(i, i)+1e-6)
	}
	r := &realism{cls: cls, mean: g.Mean}
	require.True(t, r.chol.Factorize(cov), "real feature covariance is not positive definite")
	return r
}

// median returns the median squared Mahalanobis distance of n images.
func (r *realism) median(t *testing.T, imgs []float32, n int) float64 {
	f := features(t, r.cls, imgs, n)
	d := make([]float64, n)
	v, sol := mat.NewVecDense(128, nil), mat.NewVecDense(128, nil)
	for i := range n {
		for j := range 128 {
			v.SetVec(j, float64(f[i*128+j])-r.mean[j])
		}
		require.NoError(t, r.chol.SolveVecTo(sol, v))
		d[i] = mat.Dot(v, sol)
	}
	slices.Sort(d)
	return d[n/2]
}

// The shipped rectified-flow model predicts velocities: on noised real test
// images x_s = (1-s) x0 + s eps, called at the timestep 1000 s, it predicts
// v = eps - x0 with a quarter of the error of the zero predictor (whose
// error is E[v^2], about 1.65) or less, at low, middle and high noise.
func TestFlowModelPredictsVelocity(t *testing.T) {
	ortest.Require(t)
	if _, err := os.Stat(testImages); err != nil {
		t.Skip("Fashion-MNIST not installed")
	}
	m, err := onnx.Open(flowModelFile())
	require.NoError(t, err)
	defer m.Close()
	all, _, _, _, err := ReadIDXImages(testImages)
	require.NoError(t, err)
	const n = 32
	imgs := all[:n*784]
	eps := make([]float32, n*784)
	SeedNoise(eps, Seeds(11, n))
	for _, s := range []float64{0.2, 0.5, 0.8} {
		xs := tensor.New(tensor.WithShape(n, 1, 28, 28), tensor.Of(tensor.Float32))
		xd := xs.Float32s()
		for i := range xd {
			xd[i] = float32(1-s)*imgs[i] + float32(s)*eps[i]
		}
		v := tensor.New(tensor.WithShape(n, 1, 28, 28), tensor.Of(tensor.Float32))
		require.NoError(t, m.PredictNoise(context.Background(), v, xs, []float32{float32(1000 * s)}))
		var mse, base float64
		for i, p := range v.Float32s() {
			want := float64(eps[i] - imgs[i])
			mse += (float64(p) - want) * (float64(p) - want)
			base += want * want
		}
		t.Logf("s=%v: velocity MSE %.4f (zero predictor %.4f)", s, mse/float64(len(eps)), base/float64(len(eps)))
		require.Less(t, mse, 0.25*base, "s=%v", s)
	}
}

// Its samples are garments: at 28x28 (FlowMatchEuler, 20 steps) and,
// pooled back to 28, at 56x56 with Upsample Guidance, the classifier
// features of its samples lie among those of real test images (squared
// Mahalanobis distance under a Gaussian fitted to 2,000 of them), where
// held-out real images lie and pure noise does not. (The classifier's
// confidence cannot tell: it is confident on noise too.)
func TestFlowModelSamplesGarments(t *testing.T) {
	ortest.Require(t)
	if _, err := os.Stat(testImages); err != nil {
		t.Skip("Fashion-MNIST not installed")
	}
	all, _, _, _, err := ReadIDXImages(testImages)
	require.NoError(t, err)
	const nReal = 2000
	r := newRealism(t, all[:nReal*784], nReal)
	real := r.median(t, all[nReal*784:(nReal+64)*784], 64)
	noise := make([]float32, 16*784)
	SeedNoise(noise, Seeds(1, 16))
	noisy := r.median(t, noise, 16)
	t.Logf("median squared Mahalanobis distance: held-out real images %.0f, noise %.0f", real, noisy)
	require.Greater(t, noisy, 2.5*real, "noise is not told apart from real images")

	m, err := onnx.Open(flowModelFile())
	require.NoError(t, err)
	defer m.Close()
	s := &Sampler{Model: m, Steps: 20}
	ug := Guided(1)
	for _, tc := range []struct {
		set Setting
		n   int
	}{
		{Setting{Name: "28 flow", Size: 28, Flow: true}, 16},
		{Setting{Name: "56 flow UG", Size: 56, Flow: true, Guide: &ug}, 8},
	} {
		x, err := s.Sample(context.Background(), tc.set, Seeds(300, tc.n), 0)
		require.NoError(t, err)
		small := make([]float32, tc.n*784)
		f, _ := tc.set.Factor()
		AreaDownsample(small, x.Float32s(), tc.n, tc.set.Size, tc.set.Size, f)
		got := r.median(t, small, tc.n)
		t.Logf("%s: median squared Mahalanobis distance %.0f", tc.set.Name, got)
		require.Less(t, got, 2*real, tc.set.Name)
	}
}
