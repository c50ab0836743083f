package guidance

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/schedule"
)

// TestUpsampleHighLowSameModelIsUpsample: with one model for both calls
// the result is Upsample's, bit for bit, for every prediction type.
func TestUpsampleHighLowSameModelIsUpsample(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	model := pointwise{a: 0.7, b: 0.4}
	x := randTensor(r, 2, 3, 8, 12)
	n := 0
	for _, pred := range []schedule.PredictionType{schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample} {
		for _, seq := range []bool{false, true} {
			opts := DefaultUpsampleOptions()
			opts.Prediction, opts.Sequential = pred, seq
			a, err := Upsample(model, testSchedule, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := UpsampleHighLow(model, model, testSchedule, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, tv := range []float32{999, 500, 20} {
				want, err1 := predict(a, x, tv, tv-7)
				got, err2 := predict(b, x, tv, tv-7)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s sequential %v t=%v: element %d is %v, Upsample gives %v", pred, seq, tv, i, got[i], want[i])
					}
				}
				n++
			}
		}
	}
	t.Logf("%d settings", n)
}

// constant predicts c everywhere and records the shapes it is called with.
type constant struct {
	c      float32
	shapes *[][]int
}

func (m constant) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	*m.shapes = append(*m.shapes, slices.Clone([]int(x.Shape())))
	for i := range dst.Float32s() {
		dst.Float32s()[i] = m.c
	}
	return nil
}

// TestUpsampleHighLowRoutesCalls: the high-resolution call goes to high
// and the low-resolution one to low: with constant models A and B, the
// guided noise is A + w (B/sqrt(k) - A).
func TestUpsampleHighLowRoutesCalls(t *testing.T) {
	var hs, ls [][]int
	high, low := constant{c: 0.5, shapes: &hs}, constant{c: -2, shapes: &ls}
	opts := DefaultUpsampleOptions()
	opts.Factors, opts.Theta, opts.Sequential = []int{2, 3}, 0.75, true
	g, err := UpsampleHighLow(high, low, testSchedule, opts)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rand.New(rand.NewPCG(1, 2)), 2, 1, 8, 12)
	got, err := predict(g, x, 700)
	if err != nil {
		t.Fatal(err)
	}
	want := float32(0.5 + 0.75*(-2/math.Sqrt(6)-0.5))
	for i, v := range got {
		if math.Abs(float64(v-want)) > 1e-6 {
			t.Fatalf("element %d is %v, want %v", i, v, want)
		}
	}
	if !slices.EqualFunc(hs, [][]int{{2, 1, 8, 12}}, slices.Equal) || !slices.EqualFunc(ls, [][]int{{2, 1, 4, 4}}, slices.Equal) {
		t.Fatalf("high calls %v, low calls %v: want one [2 1 8 12] and one [2 1 4 4]", hs, ls)
	}
}

func TestUpsampleHighLowNilModels(t *testing.T) {
	var typedNil ugo.DenoiserFunc
	m := pointwise{a: 1}
	for _, c := range []struct {
		name      string
		high, low ugo.Denoiser
	}{{"nil high", nil, m}, {"nil low", m, nil}, {"typed nil low", m, typedNil}} {
		if _, err := UpsampleHighLow(c.high, c.low, testSchedule, DefaultUpsampleOptions()); !errors.Is(err, ugo.ErrNilDenoiser) {
			t.Errorf("%s: got %v, want ugo.ErrNilDenoiser", c.name, err)
		}
	}
}
