package schedule

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata (runs testdata/gen_diffusers.py with /usr/bin/python3 for the diffusers goldens)")

type diffusersGoldens struct {
	Torch     string `json:"torch"`
	Schedules []struct {
		BetaSchedule string    `json:"beta_schedule"`
		T            int       `json:"T"`
		BetaStart    float64   `json:"beta_start"`
		BetaEnd      float64   `json:"beta_end"`
		Rescale      bool      `json:"rescale_betas_zero_snr"`
		TrainedBetas []float64 `json:"trained_betas"`
		Betas        []uint32  `json:"betas"`
		AlphasCum    []uint32  `json:"alphas_cumprod"`
	} `json:"schedules"`
	Timesteps []struct {
		T, N      int
		Spacing   Spacing `json:"spacing"`
		Offset    int     `json:"offset"`
		Timesteps []int   `json:"timesteps"`
	} `json:"timesteps"`
	Sweeps []struct {
		T           int     `json:"T"`
		Spacing     Spacing `json:"spacing"`
		Len         []int   `json:"len"`
		WeightedSum []int64 `json:"weighted_sum"`
	} `json:"sweeps"`
}

const diffusersGoldenPath = "testdata/diffusers_goldens.json"

func loadDiffusersGoldens(t *testing.T) *diffusersGoldens {
	t.Helper()
	if *update {
		py := "/usr/bin/python3"
		cmd := exec.Command(py, filepath.Join("testdata", "gen_diffusers.py"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("regenerating %s with %s: %v", diffusersGoldenPath, py, err)
		}
		if err := os.WriteFile(diffusersGoldenPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(diffusersGoldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var g diffusersGoldens
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// ulps returns the distance in units in the last place between two
// non-negative float32 values.
func ulps(a, b uint32) int64 {
	d := int64(a) - int64(b)
	if d < 0 {
		d = -d
	}
	return d
}

// TestDiffusersSchedules compares betas and alphas_cumprod with the values
// diffusers' formulas give in PyTorch, bit for bit (within maxULP for the
// sigmoid schedule, whose PyTorch sigmoid is not correctly rounded).
func TestDiffusersSchedules(t *testing.T) {
	g := loadDiffusersGoldens(t)
	for _, c := range g.Schedules {
		name := c.BetaSchedule + "/" + itoa(c.T)
		if c.Rescale {
			name += "/zsnr"
		}
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NumTrainTimesteps = c.T
			cfg.RescaleBetasZeroSNR = c.Rescale
			if c.TrainedBetas != nil {
				for _, b := range c.TrainedBetas {
					cfg.TrainedBetas = append(cfg.TrainedBetas, float32(b))
				}
			} else {
				cfg.BetaSchedule = c.BetaSchedule
				// Through JSON, so that the float64 values reach the
				// computation as they do in Python.
				js, _ := json.Marshal(map[string]any{
					"num_train_timesteps": c.T, "beta_schedule": c.BetaSchedule,
					"beta_start": c.BetaStart, "beta_end": c.BetaEnd,
					"rescale_betas_zero_snr": c.Rescale, "steps_offset": 0,
				})
				if c.BetaSchedule == BetaSquaredCos {
					js, _ = json.Marshal(map[string]any{"num_train_timesteps": c.T, "beta_schedule": c.BetaSchedule, "rescale_betas_zero_snr": c.Rescale})
				}
				p, err := ParseConfig(js)
				if err != nil {
					t.Fatal(err)
				}
				cfg = *p
			}
			s, err := cfg.Schedule()
			if err != nil {
				t.Fatal(err)
			}
			var maxULP int64
			if c.BetaSchedule == BetaSigmoid {
				maxULP = 2
			}
			check := func(what string, got []float32, want []uint32) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
				}
				bad, worst := 0, int64(0)
				for i := range got {
					d := ulps(math.Float32bits(got[i]), want[i])
					worst = max(worst, d)
					if d > maxULP {
						if bad < 3 {
							t.Errorf("%s[%d] = %v (%#x), want %v (%#x)", what, i, got[i], math.Float32bits(got[i]), math.Float32frombits(want[i]), want[i])
						}
						bad++
					}
				}
				if bad > 0 {
					t.Errorf("%s: %d of %d values differ by more than %d ulp (worst %d)", what, bad, len(got), maxULP, worst)
				}
			}
			check("betas", s.Betas(), c.Betas)
			check("alphas_cumprod", s.AlphasCumprod(), c.AlphasCum)

			// The float32 constructors agree with the config path for the
			// betas used here, whose float32 square roots round alike.
			var direct *Schedule
			switch c.BetaSchedule {
			case BetaLinear:
				direct = Linear(c.T, float32(c.BetaStart), float32(c.BetaEnd))
			case BetaScaledLinear:
				direct = ScaledLinear(c.T, float32(c.BetaStart), float32(c.BetaEnd))
			case BetaSquaredCos:
				direct = SquaredCosCapV2(c.T)
			case BetaSigmoid:
				direct = Sigmoid(c.T, float32(c.BetaStart), float32(c.BetaEnd))
			default:
				direct, err = FromBetas(cfg.TrainedBetas)
				if err != nil {
					t.Fatal(err)
				}
			}
			if c.Rescale {
				direct = direct.RescaleZeroTerminalSNR()
			}
			check("constructor betas", direct.Betas(), c.Betas)
		})
	}
}

// TestDiffusersTimesteps compares Timesteps with diffusers' set_timesteps
// arithmetic in NumPy, list by list and, for every n, by checksum.
func TestDiffusersTimesteps(t *testing.T) {
	g := loadDiffusersGoldens(t)
	for _, c := range g.Timesteps {
		got, err := Timesteps(c.T, c.N, c.Spacing, c.Offset)
		if err != nil {
			t.Errorf("Timesteps(%d, %d, %s, %d): %v", c.T, c.N, c.Spacing, c.Offset, err)
			continue
		}
		want := c.Timesteps
		if len(want) > c.N {
			// NumPy's arange overshoots; the extras are always -1.
			for _, v := range want[c.N:] {
				if v != -1 {
					t.Errorf("Timesteps(%d, %d, %s): diffusers' extra timestep is %d, not -1", c.T, c.N, c.Spacing, v)
				}
			}
			want = want[:c.N]
		}
		if !slices.Equal(got, want) {
			t.Errorf("Timesteps(%d, %d, %s, %d) = %v, want %v", c.T, c.N, c.Spacing, c.Offset, got, want)
		}
	}
	for _, sw := range g.Sweeps {
		for i := range sw.Len {
			n := i + 1
			got, err := Timesteps(sw.T, n, sw.Spacing, 0)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for j, v := range got {
				sum += int64(j+1) * int64(v)
			}
			if len(got) != n || sum != sw.WeightedSum[i] {
				t.Errorf("Timesteps(%d, %d, %s): checksum %d, want %d", sw.T, n, sw.Spacing, sum, sw.WeightedSum[i])
			}
		}
	}
}
