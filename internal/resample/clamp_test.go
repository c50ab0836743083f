package resample

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// TestClampBlocksProperties checks, on random shapes, factors and values,
// that ClampBlocks keeps every element in range, moves every block mean to
// clamp(mean), leaves blocks already in range untouched and is the identity
// when nothing is out of range.
func TestClampBlocksProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rank := rapid.IntRange(4, 5).Draw(rt, "rank")
		nf := rapid.IntRange(1, rank-2).Draw(rt, "nfactors")
		factors := make([]int, nf)
		for i := range factors {
			factors[i] = rapid.IntRange(1, 4).Draw(rt, "factor")
		}
		shape := []int{rapid.IntRange(1, 2).Draw(rt, "n"), rapid.IntRange(1, 2).Draw(rt, "c")}
		for range rank - 2 {
			shape = append(shape, 0)
		}
		for i := range rank - 2 {
			f := 1
			if j := i - (rank - 2 - nf); j >= 0 {
				f = factors[j]
			}
			shape[2+i] = f * rapid.IntRange(1, 3).Draw(rt, "blocks")
		}
		p, err := NewPooling(shape, factors)
		if err != nil {
			rt.Fatalf("NewPooling(%v, %v): %v", shape, factors, err)
		}
		r := float32(rapid.Float64Range(0.1, 2).Draw(rt, "r"))
		spread := rapid.Float64Range(0, 3).Draw(rt, "spread")
		x := make([]float32, p.HighLen())
		for i := range x {
			x[i] = float32(rapid.Float64Range(-spread, spread).Draw(rt, "v"))
		}
		orig := append([]float32(nil), x...)
		before := make([]float32, p.LowLen())
		p.Pool(before, orig, 1)
		means, scales := make([]float32, p.LowLen()), make([]float32, p.LowLen())
		changed := p.ClampBlocks(x, means, scales, r)

		after := make([]float32, p.LowLen())
		p.Pool(after, x, 1)
		for b, m := range before {
			want := min(max(m, -r), r)
			if math.Abs(float64(after[b]-want)) > 1e-5 {
				rt.Fatalf("block %d: mean %v -> %v, want %v", b, m, after[b], want)
			}
		}
		any := false
		for i, v := range x {
			if v > r || v < -r {
				rt.Fatalf("element %d = %v outside [-%v, %v]", i, v, r, r)
			}
			if orig[i] > r || orig[i] < -r {
				any = true
			}
		}
		if changed != any {
			rt.Fatalf("changed = %v, but elements out of range: %v", changed, any)
		}
		// Blocks whose elements were all in range are untouched.
		up, upMean := make([]float32, p.HighLen()), make([]float32, p.HighLen())
		p.Repeat(up, scales)
		p.Repeat(upMean, before)
		for i := range x {
			if up[i] == 1 && upMean[i] <= r && upMean[i] >= -r && x[i] != orig[i] {
				rt.Fatalf("element %d changed %v -> %v in a block with scale 1 and mean in range", i, orig[i], x[i])
			}
		}
	})
}

// TestClampBlocksExample checks a hand-computed 2x2 block.
func TestClampBlocksExample(t *testing.T) {
	p, err := NewPooling([]int{1, 1, 2, 4}, []int{2, 2})
	if err != nil {
		t.Fatal(err)
	}
	// Left block: mean -0.9, deviations -0.3 +0.3 -0.3 +0.3; s = 0.1/0.3.
	// Right block: all inside, untouched.
	x := []float32{-1.2, -0.6, 0.5, 0.25, -1.2, -0.6, 0, 0.1}
	means, scales := make([]float32, 2), make([]float32, 2)
	if !p.ClampBlocks(x, means, scales, 1) {
		t.Fatal("ClampBlocks reported no change")
	}
	want := []float32{-1, -0.8, 0.5, 0.25, -1, -0.8, 0, 0.1}
	for i := range x {
		if math.Abs(float64(x[i]-want[i])) > 1e-6 {
			t.Fatalf("x = %v, want %v", x, want)
		}
	}
	if scales[1] != 1 {
		t.Fatalf("scales = %v, want the right block at 1", scales)
	}
}
