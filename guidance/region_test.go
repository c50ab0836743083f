package guidance

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// regionSpy records the Region each call's context carries, by input
// height.
type regionSpy struct {
	mu   sync.Mutex
	seen map[int][]ugo.Region
	none map[int]int
}

func (s *regionSpy) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	h := x.Shape()[len(x.Shape())-2]
	s.mu.Lock()
	if r, ok := ugo.RegionFrom(ctx); ok {
		s.seen[h] = append(s.seen[h], r)
	} else {
		s.none[h]++
	}
	s.mu.Unlock()
	return pointwise{1, 0.5}.PredictNoise(ctx, dst, x, t)
}

// The low-resolution call carries the Region of the high-resolution one
// downscaled by the spatial factors; the high-resolution call gets the
// caller's context unchanged.
func TestUpsampleSetsRegion(t *testing.T) {
	tests := []struct {
		name    string
		factors []int
		shape   []int
		outer   *ugo.Region
		want    ugo.Region
	}{
		{"2x2 whole", []int{2, 2}, []int{1, 4, 16, 24}, nil,
			ugo.Region{Size: [2]int{16, 24}, Scale: [2]int{2, 2}}},
		{"1x3 panorama", []int{1, 3}, []int{2, 4, 8, 24}, nil,
			ugo.Region{Size: [2]int{8, 24}, Scale: [2]int{1, 3}}},
		{"one factor is W", []int{2}, []int{1, 1, 6, 8}, nil,
			ugo.Region{Size: [2]int{6, 8}, Scale: [2]int{1, 2}}},
		{"video frame factor ignored", []int{2, 2, 4}, []int{1, 1, 4, 8, 8}, nil,
			ugo.Region{Size: [2]int{8, 8}, Scale: [2]int{2, 4}}},
		{"composes with a tile region", []int{2, 2}, []int{1, 4, 16, 16},
			&ugo.Region{Size: [2]int{64, 48}, Offset: [2]int{16, 8}, Scale: [2]int{1, 1}},
			ugo.Region{Size: [2]int{64, 48}, Offset: [2]int{16, 8}, Scale: [2]int{2, 2}}},
		{"composes with a downscaled region", []int{2, 2}, []int{1, 4, 8, 8},
			&ugo.Region{Size: [2]int{32, 32}, Offset: [2]int{0, 16}, Scale: [2]int{2, 2}},
			ugo.Region{Size: [2]int{32, 32}, Offset: [2]int{0, 16}, Scale: [2]int{4, 4}}},
	}
	for _, tc := range tests {
		for _, seq := range []bool{false, true} {
			s := &regionSpy{seen: map[int][]ugo.Region{}, none: map[int]int{}}
			opts := DefaultUpsampleOptions()
			opts.Factors, opts.Sequential = tc.factors, seq
			d, err := Upsample(s, testSchedule, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.outer != nil {
				ctx = ugo.WithRegion(ctx, *tc.outer)
			}
			x := randTensor(rand.New(rand.NewPCG(1, 2)), tc.shape...)
			for range 2 {
				if err := d.PredictNoise(ctx, tensorOf(tc.shape...), x, []float32{900}); err != nil {
					t.Fatal(err)
				}
			}
			h := tc.shape[len(tc.shape)-2]
			fh := 1
			if n := len(tc.factors); n >= 2 {
				fh = tc.factors[n-2]
			}
			lowH, lowW := h/fh, tc.shape[len(tc.shape)-1]/tc.factors[len(tc.factors)-1]
			if tc.outer == nil && s.none[h] != 2 {
				t.Errorf("%s: high-resolution calls without a region: %d, want 2 (%v)", tc.name, s.none[h], s.seen[h])
			}
			if tc.outer != nil && (len(s.seen[h]) != 2 || s.seen[h][0] != *tc.outer) {
				t.Errorf("%s: high-resolution regions %v, want the caller's %v", tc.name, s.seen[h], *tc.outer)
			}
			if lowH == h {
				continue // both calls have the same height: checked below by count
			}
			if got := s.seen[lowH]; len(got) != 2 || got[0] != tc.want || got[1] != tc.want {
				t.Errorf("%s (sequential %v): low-resolution regions %v, want %v twice", tc.name, seq, got, tc.want)
			}
			if r := s.seen[lowH]; len(r) > 0 {
				if err := r[0].Check(lowH, lowW); err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
			}
		}
	}
}

// TestUpsampleRegionPanorama covers factors whose low-resolution input
// keeps the height (1x3): the two calls are told apart by width.
func TestUpsampleRegionPanorama(t *testing.T) {
	var mu sync.Mutex
	got := map[int]ugo.Region{}
	m := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, ts []float32) error {
		w := x.Shape()[3]
		mu.Lock()
		got[w] = ugo.RegionOf(ctx, x.Shape()[2], w)
		mu.Unlock()
		return pointwise{1, 0.5}.PredictNoise(ctx, dst, x, ts)
	})
	opts := DefaultUpsampleOptions()
	opts.Factors = []int{1, 3}
	d, _ := Upsample(m, testSchedule, opts)
	x := randTensor(rand.New(rand.NewPCG(3, 4)), 1, 2, 8, 24)
	if _, err := predict(d, x, 950); err != nil {
		t.Fatal(err)
	}
	if want := ugo.WholeRegion(8, 24); got[24] != want {
		t.Errorf("high-resolution region %+v, want %+v", got[24], want)
	}
	if want := (ugo.Region{Size: [2]int{8, 24}, Scale: [2]int{1, 3}}); got[8] != want {
		t.Errorf("low-resolution region %+v, want %+v", got[8], want)
	}
}
