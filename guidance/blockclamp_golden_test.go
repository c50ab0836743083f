package guidance

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
)

// clampCase is a guided run whose update comes from the block-clamped x0.
type clampCase struct {
	name    string
	solver  sampler.Solver
	steps   int
	factors []int
	eta     float64
	shape   []int
}

func clampCases() []clampCase {
	s := testSchedule
	clip := sampler.Clip{ClipSample: true, ClipSampleRange: 1}
	sq := []int{2, 2, 8, 8}
	return []clampCase{
		{"ddim_clipped", &sampler.DDIM{Schedule: s, Clip: clip, UseClippedModelOutput: true}, 10, []int{2, 2}, 1, sq},
		{"ddim_clipped_eta_window", &sampler.DDIM{Schedule: s, Clip: clip, UseClippedModelOutput: true}, 10, []int{2, 2}, 0.5, sq},
		{"ddim_clipped_wide", &sampler.DDIM{Schedule: s, Clip: clip, UseClippedModelOutput: true}, 8, []int{1, 2}, 1, []int{1, 3, 4, 8}},
		{"ddpm", &sampler.DDPM{Schedule: s, Clip: clip}, 10, []int{2, 2}, 1, sq},
		{"dpmpp_2m", &sampler.DPMSolverMultistep{Schedule: s, LowerOrderFinal: true}, 10, []int{2, 2}, 1, sq},
		{"euler", &sampler.Euler{Schedule: s}, 10, []int{2, 2}, 1, sq},
		{"unipc", &sampler.UniPC{Schedule: s, LowerOrderFinal: true}, 10, []int{2, 2}, 1, sq},
	}
}

// runClampCase samples c with Upsample Guidance and the block clamp at
// range 1 (or without it) over the pointwise model, from seed 7.
func runClampCase(t *testing.T, c clampCase, clamp bool) []float32 {
	t.Helper()
	opts := DefaultUpsampleOptions()
	opts.Factors, opts.Eta = c.factors, c.eta
	guided, err := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
	if err != nil {
		t.Fatal(err)
	}
	var hook sampler.Hook
	if clamp {
		if hook, err = BlockClamp(testSchedule, opts, 1); err != nil {
			t.Fatal(err)
		}
	}
	src := noise.NewPCG(7)
	x, err := noise.NewTensor(src, c.shape...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sampler.Sample(context.Background(), guided, c.solver, x, sampler.Options{Steps: c.steps, Noise: src, Hook: hook}); err != nil {
		t.Fatal(err)
	}
	return x.Float32s()
}

// TestBlockClampMatchesUpsampleClamp compares guided runs with the block
// clamp as a sampler hook against the outputs of the clamp it replaces,
// recorded in testdata/blockclamp_upsample.json: Upsample rewrote its
// guided noise prediction so that the clean sample it implied was
// block-clamped, and solvers whose update comes from the clipped x0 read
// that x0 back from the noise. The hook hands them the clamped x0 itself,
// without that round trip through the noise, whose float32 rounding is
// the only difference left: the runs agree to 3e-6 (within 1e-5
// asserted), not bit for bit. The recording cannot be refreshed: the
// implementation that produced it is gone.
func TestBlockClampMatchesUpsampleClamp(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "blockclamp_upsample.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]uint32{}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, c := range clampCases() {
		got := runClampCase(t, c, true)
		w := want[c.name]
		if len(w) != len(got) {
			t.Fatalf("%s: %d values, recording has %d", c.name, len(got), len(w))
		}
		// The same run without the clamp, to show that the clamp acts.
		free := runClampCase(t, c, false)
		var worst, effect float64
		for i, v := range got {
			old := math.Float32frombits(w[i])
			worst = max(worst, math.Abs(float64(v-old)))
			effect = max(effect, math.Abs(float64(free[i]-old)))
		}
		t.Logf("%s: largest difference %.3g (the clamp itself moves the run by %.3g)", c.name, worst, effect)
		if worst > 1e-5 {
			t.Errorf("%s: the hook's run differs from the recorded run by %.3g, want at most 1e-5", c.name, worst)
		}
		if effect < 1e-3 {
			t.Errorf("%s: the run without the clamp differs by only %.3g: the case does not exercise the clamp", c.name, effect)
		}
	}
}

// TestBlockClampDefaultDDIM checks the clamp with diffusers' default DDIM
// (use_clipped_model_output false, no clip_sample) ending on abar = 1: the
// final sample is the last step's x0, which the hook keeps in [-1, 1],
// while the unclamped run leaves it.
func TestBlockClampDefaultDDIM(t *testing.T) {
	opts := DefaultUpsampleOptions()
	guided, err := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := BlockClamp(testSchedule, opts, 1)
	if err != nil {
		t.Fatal(err)
	}
	run := func(h sampler.Hook) []float32 {
		src := noise.NewPCG(11)
		x, _ := noise.NewTensor(src, 2, 1, 8, 8)
		s := &sampler.DDIM{Schedule: testSchedule, SetAlphaToOne: true}
		if err := sampler.Sample(context.Background(), guided, s, x, sampler.Options{Steps: 10, Hook: h}); err != nil {
			t.Fatal(err)
		}
		return x.Float32s()
	}
	peak := func(v []float32) float64 {
		var m float64
		for _, e := range v {
			m = max(m, math.Abs(float64(e)))
		}
		return m
	}
	free, clamped := peak(run(nil)), peak(run(hook))
	if free <= 1.01 {
		t.Fatalf("the unclamped run peaks at %v: the case does not exercise the clamp", free)
	}
	if clamped > 1+1e-6 {
		t.Errorf("clamped run peaks at %v, want at most 1", clamped)
	}
}
