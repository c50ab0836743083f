package guidance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/schedule"
)

type ptrModel struct{ m pointwise }

func (p *ptrModel) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	return p.m.PredictNoise(ctx, dst, x, t)
}

// TestHostileUpsampleOptions: every invalid construction is an error from
// Upsample itself, not a panic or a failure at the first call.
func TestHostileUpsampleOptions(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	good := pointwise{a: 0.5, b: 0.3}
	var typedNil *ptrModel
	nan, inf := math.NaN(), math.Inf(1)
	with := func(f func(*UpsampleOptions)) UpsampleOptions {
		o := DefaultUpsampleOptions()
		f(&o)
		return o
	}
	tests := []struct {
		name  string
		model ugo.Denoiser
		s     *schedule.Schedule
		opts  UpsampleOptions
	}{
		{"nil model", nil, s, DefaultUpsampleOptions()},
		{"typed nil model", typedNil, s, DefaultUpsampleOptions()},
		{"nil DenoiserFunc", ugo.DenoiserFunc(nil), s, DefaultUpsampleOptions()},
		{"nil schedule", good, nil, DefaultUpsampleOptions()},
		{"zero Schedule", good, &schedule.Schedule{}, DefaultUpsampleOptions()},
		{"no factors", good, s, with(func(o *UpsampleOptions) { o.Factors = []int{} })},
		{"four factors", good, s, with(func(o *UpsampleOptions) { o.Factors = []int{1, 1, 2, 2} })},
		{"zero factor", good, s, with(func(o *UpsampleOptions) { o.Factors = []int{0, 2} })},
		{"negative factor", good, s, with(func(o *UpsampleOptions) { o.Factors = []int{-2, -2} })},
		{"huge factors", good, s, with(func(o *UpsampleOptions) { o.Factors = []int{1 << 40, 1 << 40} })},
		{"factor product overflows", good, s, with(func(o *UpsampleOptions) { o.Factors = []int{1 << 31, 1 << 31, 1 << 31} })},
		{"NaN theta", good, s, with(func(o *UpsampleOptions) { o.Theta = nan })},
		{"Inf theta", good, s, with(func(o *UpsampleOptions) { o.Theta = inf })},
		{"theta beyond float32", good, s, with(func(o *UpsampleOptions) { o.Theta = 1e300 })},
		{"eta -1", good, s, with(func(o *UpsampleOptions) { o.Eta = -1 })},
		{"eta 2", good, s, with(func(o *UpsampleOptions) { o.Eta = 2 })},
		{"NaN eta", good, s, with(func(o *UpsampleOptions) { o.Eta = nan })},
		{"time matching 99", good, s, with(func(o *UpsampleOptions) { o.TimeMatching = 99 })},
		{"unknown prediction", good, s, with(func(o *UpsampleOptions) { o.Prediction = "noise" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Upsample(tc.model, tc.s, tc.opts)
			if err == nil {
				t.Fatalf("accepted (%T)", d)
			}
			if strings.Contains(err.Error(), "%!") {
				t.Fatalf("malformed message %q", err)
			}
			if strings.Contains(tc.name, "nil model") || strings.Contains(tc.name, "DenoiserFunc") {
				if !errors.Is(err, ugo.ErrNilDenoiser) {
					t.Fatalf("err = %v, want ugo.ErrNilDenoiser", err)
				}
			}
		})
	}
}

// TestHostileGuidedCalls: bad arguments to a working guided model.
func TestHostileGuidedCalls(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	up, err := Upsample(pointwise{a: 0.5, b: 0.3}, s, DefaultUpsampleOptions())
	if err != nil {
		t.Fatal(err)
	}
	cfg := CFG(pointwise{a: 0.5, b: 0.3}, pointwise{a: 0.2, b: 0.1}, 7.5)
	transposed := tensorOf(1, 2, 4, 4)
	if err := transposed.T(0, 1, 3, 2); err != nil {
		t.Fatal(err)
	}
	same := tensorOf(1, 2, 4, 4)
	buf := make([]float32, 48)
	overlapA := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.WithBacking(buf[:32]))
	overlapB := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.WithBacking(buf[16:]))
	tests := []struct {
		name   string
		dst, x *tensor.Dense
		t      []float32
		alias  bool
	}{
		{"dst is x", same, same, []float32{999}, true},
		{"dst overlaps x", overlapA, overlapB, []float32{999}, true},
		{"transposed x", tensorOf(1, 2, 4, 4), transposed, []float32{999}, false},
		{"zero Dense x", tensorOf(1, 2, 4, 4), &tensor.Dense{}, []float32{999}, false},
		{"zero Dense dst", &tensor.Dense{}, tensorOf(1, 2, 4, 4), []float32{999}, false},
		{"nil x", tensorOf(1, 2, 4, 4), nil, []float32{999}, false},
		{"odd width", tensorOf(1, 2, 4, 5), tensorOf(1, 2, 4, 5), []float32{999}, false},
		{"rank 3", tensorOf(2, 4, 4), tensorOf(2, 4, 4), []float32{999}, false},
		{"NaN t", tensorOf(1, 2, 4, 4), tensorOf(1, 2, 4, 4), []float32{float32(math.NaN())}, false},
		{"no t", tensorOf(1, 2, 4, 4), tensorOf(1, 2, 4, 4), nil, false},
	}
	for _, d := range []struct {
		name string
		d    ugo.Denoiser
	}{{"Upsample", up}, {"CFG", cfg}} {
		for _, tc := range tests {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				err := d.d.PredictNoise(context.Background(), tc.dst, tc.x, tc.t)
				if tc.name == "odd width" && d.name == "CFG" {
					if err != nil {
						t.Fatalf("CFG refused a size it can take: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("accepted")
				}
				if strings.Contains(err.Error(), "%!") {
					t.Fatalf("malformed message %q", err)
				}
				if tc.alias && !errors.Is(err, ugo.ErrAlias) {
					t.Fatalf("err = %v, want ugo.ErrAlias", err)
				}
			})
		}
	}
}

// constModel writes v everywhere.
type constModel float32

func (c constModel) PredictNoise(_ context.Context, dst, _ *tensor.Dense, _ []float32) error {
	for i := range dst.Float32s() {
		dst.Float32s()[i] = float32(c)
	}
	return nil
}

// TestGuidanceOverflowIsAnError: arithmetic that leaves float32 is an
// error wrapping ugo.ErrNonFinite, never a NaN with a nil error.
func TestGuidanceOverflowIsAnError(t *testing.T) {
	x := tensorOf(1, 1, 4, 4)
	for _, tc := range []struct {
		name string
		d    ugo.Denoiser
	}{
		{"CFG scale 1e38", CFG(constModel(10), constModel(-10), 1e38)},
		{"CFG large outputs", CFG(constModel(3e38), constModel(-3e38), 7.5)},
	} {
		_, err := predict(tc.d, x, 500)
		if !errors.Is(err, ugo.ErrNonFinite) {
			t.Fatalf("%s: err = %v, want ugo.ErrNonFinite", tc.name, err)
		}
	}
	for _, scale := range []float64{1e39, math.Inf(-1), math.NaN()} {
		if _, err := predict(CFG(constModel(1), constModel(0), scale), x, 500); err == nil {
			t.Fatalf("CFG scale %v accepted", scale)
		}
	}
	var typedNil *ptrModel
	if _, err := predict(CFG(typedNil, constModel(0), 2), x, 500); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("CFG typed nil: %v", err)
	}
	s := schedule.Linear(1000, 0.0001, 0.02)
	o := DefaultUpsampleOptions()
	o.Theta = 3e38
	up, err := Upsample(CFG(constModel(1e30), constModel(-1e30), 2), s, o)
	if err != nil {
		t.Fatal(err)
	}
	ys := tensorOf(1, 1, 4, 4)
	for i := range ys.Float32s() {
		ys.Float32s()[i] = float32(i * i)
	}
	if _, err := predict(up, ys, 999); !errors.Is(err, ugo.ErrNonFinite) {
		t.Fatalf("Upsample theta 3e38: %v, want ugo.ErrNonFinite", err)
	}
}

// TestGuidanceMemoryLimit: workspaces beyond ugo.MemoryLimit are refused
// with the size they would need.
func TestGuidanceMemoryLimit(t *testing.T) {
	prev := ugo.SetMemoryLimit(256)
	defer ugo.SetMemoryLimit(prev)
	s := schedule.Linear(1000, 0.0001, 0.02)
	up, err := Upsample(pointwise{a: 0.5, b: 0.3}, s, DefaultUpsampleOptions())
	if err != nil {
		t.Fatal(err)
	}
	x := tensorOf(1, 2, 16, 16)
	var me *ugo.MemoryError
	for _, d := range []ugo.Denoiser{up, CFG(pointwise{a: 1}, pointwise{a: 2}, 3)} {
		if _, err := predict(d, x, 999); !errors.As(err, &me) || me.Need <= 256 {
			t.Fatalf("%T: err = %v, want a *ugo.MemoryError", d, err)
		}
		if !strings.Contains(me.Error(), fmt.Sprint([]int{1, 2, 16, 16})) {
			t.Fatalf("message %q does not name the shape", me)
		}
	}
}

// TestUpsampleTimestepsOutsideTheSchedule: timesteps below 0, between
// steps and far beyond T are clamped to the schedule, for every prediction
// type: the result is finite or an error.
func TestUpsampleTimestepsOutsideTheSchedule(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	for _, pred := range []schedule.PredictionType{"", schedule.PredictV, schedule.PredictSample} {
		o := DefaultUpsampleOptions()
		o.Prediction = pred
		up, err := Upsample(pointwise{a: 0.5, b: 0.3}, s, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []float32{-1e30, -1, 0, 0.5, 999, 999.5, 1000, 5000, 1e30, 3e38} {
			out, err := predict(up, tensorOf(1, 1, 4, 4), tt)
			if err == nil && ugo.FirstNonFinite(out) >= 0 {
				t.Errorf("%q at t = %v: a non-finite prediction with a nil error", pred, tt)
			}
		}
	}
}

// TestHostileStructureGuidance: hostile references, models and schedules
// are errors from StructureGuidance itself.
func TestHostileStructureGuidance(t *testing.T) {
	transposed := tensorOf(1, 1, 2, 3)
	if err := transposed.T(0, 1, 3, 2); err != nil {
		t.Fatal(err)
	}
	nan := tensorOf(1, 1, 4, 4)
	nan.Float32s()[3] = float32(math.NaN())
	refs := map[string]*tensor.Dense{"nil": nil, "zero": {}, "transposed": transposed, "rank 1": tensorOf(4),
		"float64": tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float64))}
	good := pointwise{a: 1}
	for name, ref := range refs {
		if _, err := StructureGuidance(good, testSchedule, ref, StructureOptions{}); err == nil || strings.Contains(err.Error(), "%!") {
			t.Errorf("reference %s: %v", name, err)
		}
	}
	if _, err := StructureGuidance(good, testSchedule, nan, StructureOptions{}); !errors.Is(err, ugo.ErrNonFinite) {
		t.Errorf("NaN reference: %v, want ugo.ErrNonFinite", err)
	}
	var typedNil *ptrModel
	if _, err := StructureGuidance(typedNil, testSchedule, tensorOf(1, 1, 4, 4), StructureOptions{}); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Errorf("typed nil model: %v, want ugo.ErrNilDenoiser", err)
	}
	if _, err := StructureGuidance(good, &schedule.Schedule{}, tensorOf(1, 1, 4, 4), StructureOptions{}); err == nil {
		t.Error("zero schedule accepted")
	}
	for _, sf := range []float64{-1, math.NaN(), math.Inf(1), 2} {
		if _, err := StructureGuidance(good, testSchedule, tensorOf(1, 1, 4, 4), StructureOptions{Cutoff: sf}); err == nil {
			t.Errorf("cutoff %v accepted", sf)
		}
	}
}
