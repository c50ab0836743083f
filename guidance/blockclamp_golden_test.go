package guidance

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
)

var updateClamp = flag.Bool("update", false, "rewrite the block-clamp goldens in testdata/")

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
// range 1 over the pointwise model, from seed 7.
func runClampCase(t *testing.T, c clampCase) []float32 {
	t.Helper()
	opts := DefaultUpsampleOptions()
	opts.Factors, opts.Eta = c.factors, c.eta
	opts.ClipSampleRange = 1
	guided, err := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
	if err != nil {
		t.Fatal(err)
	}
	src := noise.NewPCG(7)
	x, err := noise.NewTensor(src, c.shape...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sampler.Sample(context.Background(), guided, c.solver, x, sampler.Options{Steps: c.steps, Noise: src}); err != nil {
		t.Fatal(err)
	}
	return x.Float32s()
}

// TestBlockClampGolden compares guided runs with the block clamp against
// the outputs recorded in testdata/blockclamp.json.
func TestBlockClampGolden(t *testing.T) {
	path := filepath.Join("testdata", "blockclamp.json")
	got := map[string][]uint32{}
	for _, c := range clampCases() {
		out := runClampCase(t, c)
		bits := make([]uint32, len(out))
		for i, v := range out {
			bits[i] = math.Float32bits(v)
		}
		got[c.name] = bits
	}
	if *updateClamp {
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]uint32{}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for name, g := range got {
		w := want[name]
		if len(w) != len(g) {
			t.Fatalf("%s: %d values, golden has %d", name, len(g), len(w))
		}
		for i := range g {
			if g[i] != w[i] {
				t.Errorf("%s: value %d is %v, golden %v", name, i, math.Float32frombits(g[i]), math.Float32frombits(w[i]))
				break
			}
		}
	}
}
