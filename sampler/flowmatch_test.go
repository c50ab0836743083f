package sampler

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// drawFlow draws a FlowMatchEuler configuration (not stochastic).
func drawFlow(t *rapid.T) *FlowMatchEuler {
	f := &FlowMatchEuler{
		NumTrainTimesteps: rapid.SampledFrom([]int{0, 1000, 500, 100}).Draw(t, "T"),
		Shift:             rapid.SampledFrom([]float64{0, 1, 1.15, 3, 6}).Draw(t, "shift"),
		BaseShift:         0.5, MaxShift: 1.15, BaseImageSeqLen: 256, MaxImageSeqLen: 4096,
	}
	if rapid.Bool().Draw(t, "dynamic") {
		f.DynamicShifting = true
		f.ImageSeqLen = rapid.IntRange(16, 8192).Draw(t, "seq len")
		f.TimeShiftType = rapid.SampledFrom([]string{"", "exponential", "linear"}).Draw(t, "time shift")
	}
	switch rapid.IntRange(0, 2).Draw(t, "respace") {
	case 1:
		f.UseKarrasSigmas = true
	case 2:
		f.UseExponentialSigmas = true
	}
	if rapid.Bool().Draw(t, "terminal") {
		f.ShiftTerminal = rapid.Float64Range(0.01, 0.5).Draw(t, "shift terminal")
	}
	return f
}

// straightModel is the exact velocity field of data concentrated at one
// point x0: v(x, s) = (x - x0)/s, with s = t/T.
func straightModel(x0 []float32, T float32) ugo.Denoiser {
	return ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		s := float64(t[0] / T)
		for i, v := range x.Float32s() {
			dst.Float32s()[i] = float32(float64(v-x0[i%len(x0)]) / s)
		}
		return nil
	})
}

// TestFlowMatchEulerStraightPaths checks that the Euler step is exact on
// straight paths, whatever the levels: with the exact velocity of a point
// mass at x0, every step lands on the line from the noise to x0 at its
// level, x = x0 + (s/s_0)(x_start - x0), and the run ends at x0. It also
// checks the levels themselves: decreasing from at most 1 to a final 0,
// timesteps s*T.
func TestFlowMatchEulerStraightPaths(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := drawFlow(rt)
		n := rapid.IntRange(1, 60).Draw(rt, "steps")
		p, err := f.Trajectory(n)
		if err != nil && n == 1 && f.ShiftTerminal != 0 && strings.Contains(err.Error(), "cannot stretch") {
			return // a single level at 1 (diffusers divides by zero)
		}
		if err != nil {
			rt.Fatal(err)
		}
		T := float32(f.trainSteps())
		if p.Sigmas[n] != 0 || p.Sigmas[0] > 1 || p.InputNorm != nil || p.initSigma() != 1 {
			rt.Fatalf("levels %v, input norm %v, initial sigma %v", p.Sigmas, p.InputNorm, p.InitNoiseSigma)
		}
		for i := range n {
			if p.Timesteps[i] != p.Sigmas[i]*T {
				rt.Fatalf("timestep %d is %v for level %v", i, p.Timesteps[i], p.Sigmas[i])
			}
		}
		x0 := []float32{0.5, -1, 0.25, 0.9}
		x := tensor.New(tensor.WithShape(2, 2, 2, 2), tensor.Of(tensor.Float32))
		noise.NewPCG(rapid.Uint64().Draw(rt, "seed")).Normal(x.Float32s())
		start := slices.Clone(x.Float32s())
		checked := 0
		progress := func(info ProgressInfo) error {
			s := float64(p.Sigmas[info.Step+1]) / float64(p.Sigmas[0])
			for i, v := range info.Sample.Float32s() {
				want := float64(x0[i%4]) + s*float64(start[i]-x0[i%4])
				if math.Abs(float64(v)-want) > 2e-5*(1+math.Abs(want)) {
					rt.Fatalf("step %d: x[%d] = %v, want %v on the straight path", info.Step, i, v, want)
				}
				checked++
			}
			return nil
		}
		if err := Sample(context.Background(), straightModel(x0, T), f, x, Options{Steps: n, Progress: progress}); err != nil {
			rt.Fatal(err)
		}
		if checked != n*16 {
			rt.Fatalf("checked %d values, want %d", checked, n*16)
		}
	})
}

// TestFlowMatchEulerStochastic checks the re-noising step against its
// definition, with the same noise: (1-s_next)(x - s v) + s_next z.
func TestFlowMatchEulerStochastic(t *testing.T) {
	f := &FlowMatchEuler{Shift: 3, StochasticSampling: true}
	p, err := f.Trajectory(5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Noisy, []bool{true, true, true, true, true}) {
		t.Fatalf("Noisy = %v", p.Noisy)
	}
	x, v, z := []float32{1, -2, 0.5}, []float32{0.3, 0.1, -1}, []float32{0.7, -0.2, 1.5}
	dst, x0 := make([]float32, 3), make([]float32, 3)
	if err := f.StepAt(dst, p, 2, StepInput{ModelOutput: v, Sample: x, Noise: z, X0: x0}); err != nil {
		t.Fatal(err)
	}
	s, next := float64(p.Sigmas[2]), float64(p.Sigmas[3])
	for i := range x {
		wx0 := float64(x[i]) - s*float64(v[i])
		want := (1-next)*wx0 + next*float64(z[i])
		if math.Abs(float64(dst[i])-want) > 1e-6 || math.Abs(float64(x0[i])-wx0) > 1e-6 {
			t.Errorf("element %d: %v (x0 %v), want %v (x0 %v)", i, dst[i], x0[i], want, wx0)
		}
	}
	if err := f.StepAt(dst, p, 2, StepInput{ModelOutput: v, Sample: x}); err == nil {
		t.Error("a stochastic step without noise was accepted")
	}
}

// TestFlowMatchEulerKeysTakeEffect checks that each configuration key
// changes the levels FromConfig's sampler computes (the values against
// diffusers are in TestDiffusersRuns).
func TestFlowMatchEulerKeysTakeEffect(t *testing.T) {
	levels := func(body string, seqLen int) []float32 {
		t.Helper()
		s, err := FromConfig(parse(t, `{"_class_name": "FlowMatchEulerDiscreteScheduler"`+body+`}`))
		if err != nil {
			t.Fatal(err)
		}
		f := s.(*FlowMatchEuler)
		f.ImageSeqLen = seqLen
		p, err := f.Trajectory(12)
		if err != nil {
			t.Fatal(err)
		}
		return append(p.Sigmas, p.Timesteps...)
	}
	base := levels("", 0)
	dyn := `, "use_dynamic_shifting": true`
	dynBase := levels(dyn, 1024)
	for _, tc := range []struct {
		body   string
		seqLen int
		ref    []float32
	}{
		{`, "shift": 3.0`, 0, base},
		{`, "num_train_timesteps": 500`, 0, base},
		{`, "use_karras_sigmas": true, "shift": 3.0`, 0, levels(`, "shift": 3.0`, 0)},
		{`, "use_exponential_sigmas": true`, 0, base},
		{`, "shift_terminal": 0.1`, 0, base},
		{dyn, 2048, dynBase},
		{dyn + `, "base_shift": 0.3`, 1024, dynBase},
		{dyn + `, "max_shift": 2.0`, 1024, dynBase},
		{dyn + `, "base_image_seq_len": 128`, 1024, dynBase},
		{dyn + `, "max_image_seq_len": 8192`, 1024, dynBase},
		{dyn + `, "time_shift_type": "linear"`, 1024, dynBase},
		{dyn + `, "shift": 3.0`, 1024, levels(`, "shift": 3.0`, 0)},
	} {
		if got := levels(tc.body, tc.seqLen); slices.Equal(got, tc.ref) {
			t.Errorf("%s (sequence length %d) did not change the levels", tc.body, tc.seqLen)
		}
	}
	// With dynamic shifting, shift plays no part (diffusers ignores it).
	if !slices.Equal(levels(dyn+`, "shift": 3.0`, 1024), dynBase) {
		t.Error("shift changed the levels of a dynamically shifted run")
	}
	s, err := FromConfig(parse(t, `{"_class_name": "FlowMatchEulerDiscreteScheduler", "stochastic_sampling": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.(*FlowMatchEuler).StochasticSampling {
		t.Error("stochastic_sampling was dropped")
	}
}

// TestFlowMatchEulerMu checks calculate_shift at its two anchors and SD3's
// and FLUX's token counts.
func TestFlowMatchEulerMu(t *testing.T) {
	f := &FlowMatchEuler{BaseShift: 0.5, MaxShift: 1.15, BaseImageSeqLen: 256, MaxImageSeqLen: 4096}
	for _, tc := range []struct {
		seq  int
		want float64
	}{{256, 0.5}, {4096, 1.15}, {2176, 0.825}} {
		f.ImageSeqLen = tc.seq
		if got := f.Mu(); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Mu(%d) = %v, want %v", tc.seq, got, tc.want)
		}
	}
	// FLUX at 1024x1024: a 128x128 latent in 2x2 patches is 4096 tokens.
	if got := FlowImageSeqLen(128, 128, 2); got != 4096 {
		t.Errorf("FlowImageSeqLen(128, 128, 2) = %d, want 4096", got)
	}
}

// TestFlowMatchEulerRefuses checks the configurations and calls that are
// errors.
func TestFlowMatchEulerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    FlowMatchEuler
		want string
	}{
		{"dynamic without sequence length", FlowMatchEuler{DynamicShifting: true, BaseShift: 0.5, MaxShift: 1.15, BaseImageSeqLen: 256, MaxImageSeqLen: 4096}, "ImageSeqLen"},
		{"equal sequence lengths", FlowMatchEuler{DynamicShifting: true, ImageSeqLen: 64, BaseImageSeqLen: 256, MaxImageSeqLen: 256}, "sequence lengths"},
		{"linear with negative mu", FlowMatchEuler{DynamicShifting: true, TimeShiftType: "linear", ImageSeqLen: 1, BaseShift: 0, MaxShift: 1, BaseImageSeqLen: 256, MaxImageSeqLen: 4096}, "mu"},
		{"karras and exponential", FlowMatchEuler{UseKarrasSigmas: true, UseExponentialSigmas: true}, "at most one"},
		{"negative shift", FlowMatchEuler{Shift: -1}, "Shift"},
		{"infinite shift", FlowMatchEuler{Shift: math.Inf(1)}, "Shift"},
		{"terminal 1", FlowMatchEuler{ShiftTerminal: 1}, "ShiftTerminal"},
		{"time shift", FlowMatchEuler{TimeShiftType: "cosine"}, "TimeShiftType"},
		{"negative T", FlowMatchEuler{NumTrainTimesteps: -5}, "NumTrainTimesteps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.Trajectory(10)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	f := &FlowMatchEuler{}
	for _, n := range []int{0, -1} {
		if _, err := f.Trajectory(n); err == nil {
			t.Errorf("Trajectory(%d) succeeded", n)
		}
	}
	p, _ := f.Trajectory(4)
	if err := f.AddNoiseAt(make([]float32, 2), make([]float32, 3), make([]float32, 2), p, 0); err == nil {
		t.Error("AddNoiseAt with mismatched lengths succeeded")
	}
	if err := f.AddNoiseAt(make([]float32, 2), make([]float32, 2), make([]float32, 2), p, 4); err == nil {
		t.Error("AddNoiseAt past the last step succeeded")
	}
	var e *FlowMatchEuler
	if _, err := e.Trajectory(3); err == nil {
		t.Error("a nil FlowMatchEuler made a trajectory")
	}
	if _, err := New("flow_euler", schedule.Config{}); err == nil {
		t.Error("New with an invalid zero Config succeeded")
	}
}
