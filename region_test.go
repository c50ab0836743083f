package ugo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
)

func TestRegionContext(t *testing.T) {
	ctx := context.Background()
	_, ok := ugo.RegionFrom(ctx)
	require.False(t, ok)
	require.Equal(t, ugo.Region{Size: [2]int{6, 8}, Scale: [2]int{1, 1}}, ugo.RegionOf(ctx, 6, 8))

	r := ugo.Region{Size: [2]int{64, 96}, Offset: [2]int{8, 16}}
	ctx2 := ugo.WithRegion(ctx, r)
	got, ok := ugo.RegionFrom(ctx2)
	require.True(t, ok)
	require.Equal(t, ugo.Region{Size: [2]int{64, 96}, Offset: [2]int{8, 16}, Scale: [2]int{1, 1}}, got, "zero scale is stored as 1")
	require.Equal(t, got, ugo.RegionOf(ctx2, 3, 3), "a carried region wins over the input's size")

	inner := ugo.WithRegion(ctx2, got.Downscaled(2, 4))
	got2, _ := ugo.RegionFrom(inner)
	require.Equal(t, [2]int{2, 4}, got2.Scale)
	got1, _ := ugo.RegionFrom(ctx2)
	require.Equal(t, got, got1, "the outer context is unchanged")
}

func TestRegionCheck(t *testing.T) {
	whole := ugo.WholeRegion(8, 12)
	require.NoError(t, whole.Check(8, 12))
	require.NoError(t, whole.Downscaled(2, 3).Check(4, 4))
	require.NoError(t, whole.Window(2, 4).Check(6, 8))
	tests := []struct {
		name string
		r    ugo.Region
		h, w int
	}{
		{"input larger than the sample", whole, 9, 12},
		{"downscaled input too large", whole.Downscaled(2, 2), 4, 7},
		{"window past the right edge", whole.Window(0, 5), 8, 8},
		{"zero size", ugo.Region{}, 1, 1},
		{"negative offset", ugo.Region{Size: [2]int{4, 4}, Offset: [2]int{-1, 0}}, 1, 1},
		{"negative scale", ugo.Region{Size: [2]int{4, 4}, Scale: [2]int{1, -2}}, 1, 1},
		{"offset past the size", ugo.Region{Size: [2]int{4, 4}, Offset: [2]int{5, 0}, Scale: [2]int{2, 2}}, 1, 1},
		{"empty input", whole, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Check(tc.h, tc.w)
			require.Error(t, err)
			require.True(t, errors.Is(err, ugo.ErrRegion))
		})
	}
}

// A window of a downscaled input is the downscaled version of the window
// at the corresponding full-scale position, and Check accepts exactly the
// inputs whose footprint lies inside the sample.
func TestRegionProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := rapid.IntRange(1, 300).Draw(t, "h")
		w := rapid.IntRange(1, 300).Draw(t, "w")
		fh := rapid.IntRange(1, 8).Draw(t, "fh")
		fw := rapid.IntRange(1, 8).Draw(t, "fw")
		y := rapid.IntRange(0, 40).Draw(t, "y")
		x := rapid.IntRange(0, 40).Draw(t, "x")
		r := ugo.WholeRegion(h, w)
		a := r.Downscaled(fh, fw).Window(y, x)
		b := r.Window(y*fh, x*fw).Downscaled(fh, fw)
		if a != b {
			t.Fatalf("Downscaled then Window %+v != Window then Downscaled %+v", a, b)
		}
		if a.Offset != [2]int{y * fh, x * fw} || a.Scale != [2]int{fh, fw} || a.Size != [2]int{h, w} {
			t.Fatalf("region %+v", a)
		}
		ih := rapid.IntRange(1, 300).Draw(t, "ih")
		iw := rapid.IntRange(1, 300).Draw(t, "iw")
		fits := y*fh+ih*fh <= h && x*fw+iw*fw <= w
		if err := a.Check(ih, iw); (err == nil) != fits {
			t.Fatalf("Check(%d, %d) on %+v = %v, want fits=%v", ih, iw, a, err, fits)
		}
	})
}

type ctxKey string

func TestRegionContextReusable(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey("k"), "v"))
	rc := &ugo.RegionContext{Context: parent, Region: ugo.Region{Size: [2]int{16, 16}, Scale: [2]int{2, 0}}}
	got, ok := ugo.RegionFrom(rc)
	require.True(t, ok)
	require.Equal(t, [2]int{2, 1}, got.Scale, "zero scale reads as 1")
	require.Equal(t, "v", rc.Value(ctxKey("k")), "other values come from the parent")
	rc.Region.Offset = [2]int{4, 8}
	got, _ = ugo.RegionFrom(rc)
	require.Equal(t, [2]int{4, 8}, got.Offset)
	// A Region on a context derived from it replaces it.
	inner := ugo.WithRegion(rc, got.Downscaled(1, 2))
	got2, _ := ugo.RegionFrom(inner)
	require.Equal(t, [2]int{2, 2}, got2.Scale)
	require.NoError(t, rc.Err())
	cancel()
	require.ErrorIs(t, rc.Err(), context.Canceled)
	require.ErrorIs(t, inner.Err(), context.Canceled)
	if n := testing.AllocsPerRun(100, func() {
		rc.Region.Offset[0]++
		r, _ := ugo.RegionFrom(rc)
		_ = r
	}); n != 0 {
		t.Errorf("RegionFrom on a RegionContext allocates %v times", n)
	}
}
