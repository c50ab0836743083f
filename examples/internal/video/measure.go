package video

import (
	"context"
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/metrics"
	"github.com/ugo-diffusion/ugo/onnx"
)

// Classifier runs the shipped Fashion-MNIST classifier
// (testdata/models/fashion_classifier.onnx): x [N,1,28,28] in [-1, 1] to
// logits [N,10] and 128-d penultimate features.
type Classifier struct {
	g   *onnx.Graph
	Dim int
}

// OpenClassifier loads the classifier at path.
func OpenClassifier(path string, opts ...onnx.Option) (*Classifier, error) {
	g, err := onnx.OpenGraph(path, opts...)
	if err != nil {
		return nil, err
	}
	dim := 0
	for _, o := range g.Info().Outputs {
		if o.Name == "features" && len(o.Dims) == 2 {
			dim = int(o.Dims[1])
		}
	}
	if dim <= 0 {
		g.Close()
		return nil, fmt.Errorf("%s: no output features [N, dim]", path)
	}
	return &Classifier{g: g, Dim: dim}, nil
}

// Close releases the classifier.
func (c *Classifier) Close() error { return c.g.Close() }

// Classify returns the argmax labels and the features of n 28x28 images.
func (c *Classifier) Classify(ctx context.Context, images []float32, n int) (labels []int, features []float32, err error) {
	const per, batch = TrainedSize * TrainedSize, 512
	if len(images) != n*per {
		return nil, nil, fmt.Errorf("video: %d values for %d images of 28x28", len(images), n)
	}
	labels = make([]int, n)
	features = make([]float32, n*c.Dim)
	logits := make([]float32, batch*10)
	for start := 0; start < n; start += batch {
		nb := min(batch, n-start)
		x := tensor.New(tensor.WithShape(nb, 1, TrainedSize, TrainedSize), tensor.WithBacking(images[start*per:(start+nb)*per]))
		l := tensor.New(tensor.WithShape(nb, 10), tensor.WithBacking(logits[:nb*10]))
		f := tensor.New(tensor.WithShape(nb, c.Dim), tensor.WithBacking(features[start*c.Dim:(start+nb)*c.Dim]))
		if err := c.g.Run(ctx, map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"logits": l, "features": f}); err != nil {
			return nil, nil, err
		}
		for i := range nb {
			row := logits[i*10 : (i+1)*10]
			labels[start+i] = slices.Index(row, slices.Max(row))
		}
	}
	return labels, features, nil
}

// Clip measures of n clips of f frames each.

// LabelChanges returns, per clip, how many times the label changes from one
// frame to the next (labels: n*f, clip by clip).
func LabelChanges(labels []int, n, f int) []int {
	out := make([]int, n)
	for k := range n {
		for i := 1; i < f; i++ {
			if labels[k*f+i] != labels[k*f+i-1] {
				out[k]++
			}
		}
	}
	return out
}

// FrameDiffs returns, per clip, the f-1 mean absolute differences between
// consecutive 28x28 frames (frames: n*f*784 values in [-1, 1]), clip by clip.
func FrameDiffs(frames []float32, n, f int) []float64 {
	const per = TrainedSize * TrainedSize
	out := make([]float64, n*(f-1))
	for k := range n {
		for i := 1; i < f; i++ {
			a := frames[(k*f+i-1)*per:][:per]
			b := frames[(k*f+i)*per:][:per]
			var s float64
			for j := range a {
				s += math.Abs(float64(b[j] - a[j]))
			}
			out[k*(f-1)+i-1] = s / per
		}
	}
	return out
}

// Wasserstein1 returns the 1-Wasserstein (earth mover's) distance between
// two weighted empirical distributions on the line: the integral of |F - G|
// over x, F and G their cumulative distribution functions. Weights must be
// non-negative with positive sums; nil weights are all 1.
func Wasserstein1(a, wa, b, wb []float64) float64 {
	type pt struct {
		v    float64
		w    float64
		side int
	}
	pts := make([]pt, 0, len(a)+len(b))
	var sa, sb float64
	for i, v := range a {
		w := 1.0
		if wa != nil {
			w = wa[i]
		}
		pts = append(pts, pt{v, w, 0})
		sa += w
	}
	for i, v := range b {
		w := 1.0
		if wb != nil {
			w = wb[i]
		}
		pts = append(pts, pt{v, w, 1})
		sb += w
	}
	slices.SortFunc(pts, func(p, q pt) int { return cmpFloat(p.v, q.v) })
	var fa, fb, d float64
	for i := 0; i < len(pts)-1; i++ {
		if pts[i].side == 0 {
			fa += pts[i].w / sa
		} else {
			fb += pts[i].w / sb
		}
		d += math.Abs(fa-fb) * (pts[i+1].v - pts[i].v)
	}
	return d
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Row is one setting's measures with bootstrap 95% intervals over clips.
type Row struct {
	Name   string `json:"name"`
	Frames int    `json:"frames"`
	Size   int    `json:"size"`
	N      int    `json:"n"`
	// FD is the Frechet distance of every frame's classifier features
	// (frames area-downsampled to 28x28) against the real test images.
	FD metrics.Interval `json:"fd"`
	// LabelChange is the fraction of consecutive frame pairs whose
	// classifier label differs; OneLabel the fraction of clips that keep one
	// label on every frame.
	LabelChange metrics.Interval `json:"label_change"`
	OneLabel    metrics.Interval `json:"one_label"`
	// Diff is the mean absolute difference between consecutive frames
	// (pixels in [-1, 1]); DiffW1 the 1-Wasserstein distance between the
	// distribution of those differences and that of real clips of the same
	// frame count.
	Diff   metrics.Interval `json:"diff"`
	DiffW1 metrics.Interval `json:"diff_w1"`
	// SecPerClip is the wall-clock sampling time per clip (0 for real clips).
	SecPerClip float64 `json:"sec_per_clip"`
}

// Score computes a Row from the 28x28 frames of n clips of f frames: ref is
// the Gaussian of the real images' features, realDiffs the frame
// differences of real clips with f frames (nil for none: DiffW1 is then 0).
func Score(ctx context.Context, c *Classifier, frames []float32, n, f int, ref *metrics.FrechetReference, realDiffs []float64, bo metrics.BootstrapOptions) (Row, error) {
	labels, feat, err := c.Classify(ctx, frames, n*f)
	if err != nil {
		return Row{}, err
	}
	r := Row{Frames: f, N: n}
	dim := c.Dim
	fw := make([]float64, n*f)
	if r.FD, err = metrics.Bootstrap(n, withMethod(bo, metrics.Normal), func(w []float64) (float64, error) {
		for k := range n {
			for i := range f {
				fw[k*f+i] = w[k]
			}
		}
		g, err := metrics.FitGaussianWeighted(feat, dim, fw)
		if err != nil {
			return 0, err
		}
		return ref.Distance(g)
	}); err != nil {
		return Row{}, err
	}
	changes := LabelChanges(labels, n, f)
	weighted := func(v func(k int) float64) func(w []float64) (float64, error) {
		return func(w []float64) (float64, error) {
			var s, sw float64
			for k := range n {
				s += w[k] * v(k)
				sw += w[k]
			}
			return s / sw, nil
		}
	}
	if r.LabelChange, err = metrics.Bootstrap(n, bo, weighted(func(k int) float64 { return float64(changes[k]) / float64(f-1) })); err != nil {
		return Row{}, err
	}
	if r.OneLabel, err = metrics.Bootstrap(n, bo, weighted(func(k int) float64 {
		if changes[k] == 0 {
			return 1
		}
		return 0
	})); err != nil {
		return Row{}, err
	}
	diffs := FrameDiffs(frames, n, f)
	if r.Diff, err = metrics.Bootstrap(n, bo, weighted(func(k int) float64 {
		var s float64
		for _, d := range diffs[k*(f-1) : (k+1)*(f-1)] {
			s += d
		}
		return s / float64(f-1)
	})); err != nil {
		return Row{}, err
	}
	if realDiffs != nil {
		dw := make([]float64, len(diffs))
		if r.DiffW1, err = metrics.Bootstrap(n, bo, func(w []float64) (float64, error) {
			for k := range n {
				for i := range f - 1 {
					dw[k*(f-1)+i] = w[k]
				}
			}
			return Wasserstein1(diffs, dw, realDiffs, nil), nil
		}); err != nil {
			return Row{}, err
		}
	}
	return r, nil
}

func withMethod(bo metrics.BootstrapOptions, m metrics.IntervalMethod) metrics.BootstrapOptions {
	bo.Method = m
	return bo
}
