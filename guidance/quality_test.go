package guidance

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/analytic"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// The quantitative test of Upsample Guidance. The "pretrained model" is the
// exact denoiser of a Gaussian field with correlation length l pixels
// (internal/analytic): like a convolutional network it is defined in pixels,
// so on a canvas f times larger it keeps drawing structure l pixels wide,
// i.e. 1/f of the intended size. The intended result of sampling at f times
// the trained grid is the trained-grid field scaled up by f: downsampled by
// f, a good sample has the statistics of a trained-grid sample.
//
// Metric: the correlation length (lag at which the autocorrelation falls to
// exp(-1/2); equal to l for the field) of the sample after average pooling
// by the factors, in trained-grid pixels, compared with that of samples
// drawn at the trained grid by the same sampler. gap closed = (guided -
// plain) / (reference - plain). The guided sample is also compared with the
// field itself (length l, variance 1). The test logs the numbers, and in
// full verbose runs (-v, not -short, not -race) also those of the ablations.

// ddimSample runs deterministic 50-step (fewer in -short) DDIM from seeded
// noise and returns the sample.
func ddimSample(t *testing.T, model ugo.Denoiser, s *schedule.Schedule, seed uint64, steps int, shape ...int) *tensor.Dense {
	t.Helper()
	x := randTensor(rand.New(rand.NewPCG(seed, 99)), shape...)
	ddim := &sampler.DDIM{Schedule: s, SetAlphaToOne: true}
	if err := sampler.Sample(context.Background(), model, ddim, x, sampler.Options{Steps: steps}); err != nil {
		t.Fatal(err)
	}
	return x
}

// pooled returns D(x) for factors.
func pooled(t *testing.T, x *tensor.Dense, factors []int) *tensor.Dense {
	t.Helper()
	shape := []int(x.Shape())
	plan, err := resample.NewPooling(shape, factors)
	if err != nil {
		t.Fatal(err)
	}
	low := tensorOf(plan.LowShape(nil, len(shape), shape[0], shape[1])...)
	plan.Pool(low.Float32s(), x.Float32s(), 1)
	return low
}

// corrLength averages the correlation length over axes.
func corrLength(t *testing.T, x *tensor.Dense, axes ...int) float64 {
	t.Helper()
	var sum float64
	for _, a := range axes {
		l, err := analytic.CorrelationLength(x, a)
		if err != nil {
			t.Fatal(err)
		}
		sum += l
	}
	return sum / float64(len(axes))
}

func variance(x *tensor.Dense) float64 {
	var ss float64
	d := x.Float32s()
	for _, v := range d {
		ss += float64(v) * float64(v)
	}
	return ss / float64(len(d))
}

type qualityCase struct {
	name    string
	lengths []float64 // of the field, trailing axes
	trained []int     // trained-grid sample shape
	factors []int
	axes    []int // axes whose correlation length is measured
}

func runQuality(t *testing.T, qc qualityCase) {
	// Under -race or -short: fewer steps, half the batch, no ablations.
	quick := testing.Short() || raceEnabled
	steps := 50
	trained := append([]int(nil), qc.trained...)
	if quick {
		steps = 25
		trained[0] = max(1, trained[0]/2)
	}
	s := schedule.Linear(1000, 0.0001, 0.02)
	field, err := analytic.NewField(qc.lengths...)
	if err != nil {
		t.Fatal(err)
	}
	model := field.Denoiser(s.AlphaBar)
	target := append([]int(nil), trained...)
	off := len(target) - len(qc.factors)
	for i, f := range qc.factors {
		target[off+i] *= f
	}

	ref := ddimSample(t, model, s, 1, steps, trained...)
	lRef := corrLength(t, ref, qc.axes...)

	run := func(opts *UpsampleOptions) (lowL, highL, lowVar float64) {
		m := ugo.Denoiser(model)
		if opts != nil {
			g, err := Upsample(model, s, *opts)
			if err != nil {
				t.Fatal(err)
			}
			m = g
		}
		x := ddimSample(t, m, s, 2, steps, target...)
		low := pooled(t, x, qc.factors)
		return corrLength(t, low, qc.axes...), corrLength(t, x, qc.axes...), variance(low)
	}
	lPlain, hPlain, vPlain := run(nil)
	opts := DefaultUpsampleOptions()
	opts.Factors = qc.factors
	lGuided, hGuided, vGuided := run(&opts)
	closed := (lGuided - lPlain) / (lRef - lPlain)

	t.Logf("%s: %d DDIM steps, field length %v px, trained grid %v, target %v", qc.name, steps, qc.lengths, trained, target)
	t.Logf("  the field:                     corr length %.3f px, variance 1", qc.lengths[len(qc.lengths)-(len(target)-qc.axes[0])])
	t.Logf("  reference (trained grid):      corr length %.3f px, variance %.3f", lRef, variance(ref))
	t.Logf("  plain at target, pooled:       corr length %.3f trained px (%.3f target px), variance %.3f", lPlain, hPlain, vPlain)
	t.Logf("  guided at target, pooled:      corr length %.3f trained px (%.3f target px), variance %.3f", lGuided, hGuided, vGuided)
	t.Logf("  gap closed: %.1f%%", 100*closed)

	if !quick && testing.Verbose() { // the ablations only inform the log
		ablations := []struct {
			name   string
			mutate func(*UpsampleOptions)
		}{
			{"nearest time matching", func(o *UpsampleOptions) { o.TimeMatching = schedule.Nearest }},
			{"no time adjustment", func(o *UpsampleOptions) { o.NoTimeAdjustment = true }},
			{"no power adjustment", func(o *UpsampleOptions) { o.NoPowerAdjustment = true }},
			{"eta 0.5", func(o *UpsampleOptions) { o.Eta = 0.5 }},
		}
		for _, a := range ablations {
			o := opts
			a.mutate(&o)
			l, h, v := run(&o)
			t.Logf("  ablation %-22s corr length %.3f trained px (%.3f target px), variance %.3f, gap closed %.1f%%", a.name+":", l, h, v, 100*(l-lPlain)/(lRef-lPlain))
		}
	}

	if lRef-lPlain < 0.25*lRef {
		t.Fatalf("no repetition artefact to correct: plain %.3f vs reference %.3f", lPlain, lRef)
	}
	if closed < 0.8 {
		t.Errorf("guidance closed %.1f%% of the correlation-length gap, want at least 80%%", 100*closed)
	}
	// Against the field itself: length l (the ideal sampler's), variance 1.
	l := qc.lengths[len(qc.lengths)-(len(target)-qc.axes[0])]
	if math.Abs(lGuided-l) > 0.15*l {
		t.Errorf("guided pooled correlation length %.3f, field length %v", lGuided, l)
	}
	if math.Abs(vGuided-1) > 0.25 {
		t.Errorf("guided pooled variance %.3f, field variance 1", vGuided)
	}
}

func TestQualityAnalyticField(t *testing.T) {
	cases := []qualityCase{
		{
			name: "image 2x2", lengths: []float64{3, 3},
			trained: []int{32, 1, 32, 32}, factors: []int{2, 2}, axes: []int{2, 3},
		},
		{
			name: "video 2x frames", lengths: []float64{3, 1, 1},
			trained: []int{16, 1, 16, 16, 16}, factors: []int{2, 1, 1}, axes: []int{2},
		},
	}
	for _, qc := range cases {
		t.Run(fmt.Sprint(qc.name), func(t *testing.T) { runQuality(t, qc) })
	}
}
