package sampler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// solversFrom builds every solver of cfg (those it is valid for).
func solversFrom(t *testing.T, cfg schedule.Config) map[string]Solver {
	t.Helper()
	out := map[string]Solver{}
	add := func(name string, s Solver, err error) {
		if err == nil {
			out[name] = s
		}
	}
	d, err := NewDDIM(cfg)
	add("DDIM", d, err)
	p, err := NewDDPM(cfg)
	add("DDPM", p, err)
	e, err := NewEuler(cfg)
	add("Euler", e, err)
	a, err := NewEulerAncestral(cfg)
	add("EulerAncestral", a, err)
	m, err := NewDPMSolverMultistep(cfg)
	add("DPMSolver", m, err)
	return out
}

// TestHostileConfigurations runs every solver on configurations that divide
// by zero or overflow somewhere (zero terminal SNR with each prediction
// type, extreme model outputs, huge inputs): a run either succeeds with a
// finite sample or fails with an error, and then x holds a finite state,
// bit-identical to the input of the failing step.
func TestHostileConfigurations(t *testing.T) {
	models := map[string]ugo.Denoiser{
		"dummy": dummyModel,
		"huge": ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, tt []float32) error {
			for i := range dst.Float32s() {
				dst.Float32s()[i] = 3e38
			}
			return nil
		}),
		"zero": ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, tt []float32) error {
			clear(dst.Float32s())
			return nil
		}),
	}
	inputs := map[string]float32{"unit": 1, "huge": 3e38, "tiny": 1e-38}
	tried, failed := 0, 0
	for _, zeroSNR := range []bool{false, true} {
		for _, pred := range []schedule.PredictionType{schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample} {
			for _, spacing := range []schedule.Spacing{schedule.Leading, schedule.Trailing, schedule.Linspace} {
				cfg := schedule.DefaultConfig()
				cfg.RescaleBetasZeroSNR = zeroSNR
				cfg.PredictionType = pred
				cfg.TimestepSpacing = spacing
				cfg.ClipSample = false
				for sname, s := range solversFrom(t, cfg) {
					for mname, model := range models {
						for iname, v := range inputs {
							name := fmt.Sprintf("zeroSNR=%v/%s/%s/%s/model=%s/x=%s", zeroSNR, pred, spacing, sname, mname, iname)
							tried++
							x := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float32{v, -v, v / 2, 0}))
							var last []float32
							opts := Options{Steps: 4, Noise: noise.NewTorchCPU(1), Progress: func(p ProgressInfo) error {
								last = append(last[:0], p.Sample.Float32s()...)
								return nil
							}}
							err := Sample(context.Background(), model, s, x, opts)
							xs := x.Float32s()
							if j := ugo.FirstNonFinite(xs); j >= 0 {
								t.Fatalf("%s: x[%d] = %v after Sample (err %v)", name, j, xs[j], err)
							}
							var se *StepError
							if errors.As(err, &se) && se.Resume > 0 {
								equalBits(t, name+": x after a failed step", xs, last)
							}
							if zeroSNR && pred == schedule.PredictEpsilon && spacing == schedule.Trailing && sname == "DDIM" && mname == "dummy" && !errors.Is(err, ErrNonFinite) {
								t.Fatalf("%s: err = %v, want ErrNonFinite (x0 = x/sqrt(abar) with abar = 0)", name, err)
							}
							if err != nil {
								failed++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d hostile configurations, %d refused", tried, failed)
}

// TestSampleMemoryLimit: a run whose buffers exceed ugo.MemoryLimit is
// refused before anything is allocated or changed, with the size it needs.
func TestSampleMemoryLimit(t *testing.T) {
	prev := ugo.SetMemoryLimit(1 << 10)
	defer ugo.SetMemoryLimit(prev)
	x := dummyDeter(false)
	before := append([]float32(nil), x.Float32s()...)
	err := Sample(context.Background(), dummyModel, &DDIM{Schedule: schedule.Linear(1000, 0.0001, 0.02)}, x, Options{Steps: 3})
	var me *ugo.MemoryError
	if !errors.As(err, &me) || me.Need != ugo.TensorBytes(3, []int(x.Shape())...) || me.Limit != 1<<10 {
		t.Fatalf("err = %v, want a *ugo.MemoryError for 3 buffers", err)
	}
	equalBits(t, "x", x.Float32s(), before)
	ugo.SetMemoryLimit(prev)
	if err := Sample(context.Background(), dummyModel, &DDIM{Schedule: schedule.Linear(1000, 0.0001, 0.02)}, x, Options{Steps: 3}); err != nil {
		t.Fatal(err)
	}
}

// TestSampleRefusesNonFiniteInput: NaN or Inf in x or PrevX0 is refused
// before the first model call.
func TestSampleRefusesNonFiniteInput(t *testing.T) {
	s := &DDIM{Schedule: schedule.Linear(1000, 0.0001, 0.02)}
	calls := 0
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
		calls++
		return dummyModel(ctx, dst, x, tt)
	})
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		x := dummyDeter(false)
		x.Float32s()[3] = bad
		if err := Sample(context.Background(), model, s, x, Options{Steps: 3}); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("x with %v: %v", bad, err)
		}
		prev := dummyDeter(false)
		prev.Float32s()[0] = bad
		dpm := &DPMSolverMultistep{Schedule: s.Schedule}
		if err := Sample(context.Background(), model, dpm, dummyDeter(false), Options{Steps: 3, StartStep: 1, PrevX0: prev}); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("PrevX0 with %v: %v", bad, err)
		}
	}
	if calls != 0 {
		t.Fatalf("%d model calls on refused input", calls)
	}
}

// TestSampleTypedNilNoise: a nil *PCG in Options.Noise is refused like a
// nil interface, before it is dereferenced.
func TestSampleTypedNilNoise(t *testing.T) {
	var src *noise.PCG
	s := &DDPM{Schedule: schedule.Linear(1000, 0.0001, 0.02)}
	err := Sample(context.Background(), dummyModel, s, dummyDeter(false), Options{Steps: 3, Noise: src})
	if err == nil || !strings.Contains(err.Error(), "Noise is nil") {
		t.Fatalf("err = %v", err)
	}
	var solver *DDIM
	if err := Sample(context.Background(), dummyModel, solver, dummyDeter(false), Options{Steps: 3}); err == nil {
		t.Fatal("a nil *DDIM accepted")
	}
}
