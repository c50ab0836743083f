package sampler

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// diffusersRuns is testdata/diffusers_runs.json, written by
// tools/goldens/diffusers_runs.py, which runs diffusers' own scheduler
// files (unmodified, with torch) through a pipeline-style loop.
type diffusersRuns struct {
	Commit string `json:"diffusers_commit"`
	Shape  []int  `json:"shape"`
	Cases  []struct {
		Name     string          `json:"name"`
		Config   json.RawMessage `json:"config"`
		Sampler  string          `json:"sampler"`
		Steps    int             `json:"steps"`
		Seed     uint64          `json:"seed"`
		Strength float64         `json:"strength"`
		// ImageSeqLen sets FlowMatchEuler.ImageSeqLen (dynamic shifting).
		ImageSeqLen int       `json:"image_seq_len"`
		Timesteps   []float64 `json:"timesteps"`
		Sample      []float64 `json:"sample"`
	} `json:"cases"`
}

// diffusersTolerance is the largest relative difference from diffusers'
// final sample accepted for a case: float32 rounding of log, exp and pow
// and, for UniPC, of the small linear solves (torch calls LAPACK).
func diffusersTolerance(name string) float64 {
	switch {
	case strings.HasPrefix(name, "unipc"), strings.Contains(name, "from_dpm"), strings.Contains(name, "from_unipc"):
		return 2e-6
	}
	return 1e-6
}

// TestDiffusersRuns builds each case's sampler from its scheduler config
// through FromConfig (or New, for a sampler other than the config's
// _class_name, as diffusers' from_config does) and compares the trajectory's
// timesteps and the final sample of a Sample run with diffusers'.
func TestDiffusersRuns(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "diffusers_runs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g diffusersRuns
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, want := range g.Cases {
		t.Run(want.Name, func(t *testing.T) {
			cfg, err := schedule.ParseConfig(want.Config)
			if err != nil {
				t.Fatal(err)
			}
			var s Solver
			if want.Sampler != "" {
				s, err = New(want.Sampler, *cfg)
			} else {
				s, err = FromConfig(*cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			if f, ok := s.(*FlowMatchEuler); ok {
				f.ImageSeqLen = want.ImageSeqLen
			}
			p, err := s.Trajectory(want.Steps)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Timesteps) != len(want.Timesteps) {
				t.Fatalf("%d timesteps %v, want %d %v", len(p.Timesteps), p.Timesteps, len(want.Timesteps), want.Timesteps)
			}
			// Integer timesteps must match exactly, and the flow sampler's;
			// other fractional ones (Euler with Karras sigmas) to float32
			// rounding of numpy's log.
			for i, ts := range p.Timesteps {
				w := want.Timesteps[i]
				exact := w == math.Trunc(w) || strings.HasPrefix(want.Name, "flow") // flow levels: float32, bit for bit
				if d := math.Abs(float64(ts) - w); d != 0 && (exact || d > 1e-5*max(1, math.Abs(w))) {
					t.Fatalf("timesteps %v, want %v", p.Timesteps, want.Timesteps)
				}
			}
			src := noise.NewTorchCPU(want.Seed)
			x := tensor.New(tensor.WithShape(g.Shape...), tensor.Of(tensor.Float32))
			xs := x.Float32s()
			if want.Strength > 0 {
				for i := range xs {
					xs[i] = float32(i)/float32(len(xs)) - 0.5
				}
			} else {
				src.Normal(xs)
			}
			if err := Sample(context.Background(), dummyModel, s, x, Options{Steps: want.Steps, Noise: src, Strength: want.Strength}); err != nil {
				t.Fatal(err)
			}
			d := maxRelDiff(xs, want.Sample)
			t.Logf("max relative difference from diffusers: %.3g", d)
			if !(d <= diffusersTolerance(want.Name)) {
				t.Errorf("final sample differs from diffusers by %g (relative)", d)
			}
		})
	}
}
