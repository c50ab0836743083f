package main

import (
	"slices"
	"testing"
)

// Every crop is a 14x14 window of its own image at an offset in 0..14, and
// image i is cropped at the same places whatever the images hold, so every
// row of the table is cropped alike.
func TestCropsAreWindowsAtSeededOffsets(t *testing.T) {
	const n, k = 5, 3
	imgs := make([]float32, n*high*high)
	for i := range imgs {
		imgs[i] = float32(i) // unique values locate each pixel
	}
	got := crops(imgs, n, k, 42)
	if len(got) != n*k*low*low {
		t.Fatalf("%d values, want %d", len(got), n*k*low*low)
	}
	offsets := map[[2]int]bool{}
	for i := 0; i < n; i++ {
		for c := 0; c < k; c++ {
			crop := got[(i*k+c)*low*low : (i*k+c+1)*low*low]
			first := int(crop[0]) - i*high*high
			oy, ox := first/high, first%high
			if oy < 0 || oy > high-low || ox < 0 || ox > high-low {
				t.Fatalf("image %d crop %d starts at (%d, %d)", i, c, oy, ox)
			}
			offsets[[2]int{oy, ox}] = true
			for y := 0; y < low; y++ {
				for x := 0; x < low; x++ {
					if want := float32(i*high*high + (oy+y)*high + ox + x); crop[y*low+x] != want {
						t.Fatalf("image %d crop %d pixel (%d,%d) = %v, want %v", i, c, y, x, crop[y*low+x], want)
					}
				}
			}
		}
	}
	if len(offsets) < n*k/2 {
		t.Errorf("only %d distinct offsets in %d crops", len(offsets), n*k)
	}
	other := make([]float32, len(imgs))
	for i := range other {
		other[i] = imgs[i] + 0.5
	}
	again := crops(other, n, k, 42)
	for i := range again {
		if again[i] != got[i]+0.5 {
			t.Fatalf("value %d: other images cropped elsewhere", i)
		}
	}
	if slices.Equal(crops(imgs, n, k, 43), got) {
		t.Error("another seed gives the same crops")
	}
}

func TestFmtCalls(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]float64
		want string
	}{
		{nil, "0"},
		{map[string]float64{"14x14": 25}, "25 @14"},
		{map[string]float64{"14x14": 32, "28x28": 25, "56x56": 7}, "7 @56 + 25 @28 + 32 @14"},
	} {
		if got := fmtCalls(tc.in); got != tc.want {
			t.Errorf("fmtCalls(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The -flow table pairs every eps setting with the flow model's at the
// same size and guidance, the eps model's native row first.
func TestFlowSettingsPairUp(t *testing.T) {
	s := flowSettings()
	if s[0].Name != "28 native" || s[0].Flow {
		t.Fatalf("first setting %+v, want the eps model's native row", s[0])
	}
	eps, flow := map[[2]int]int{}, map[[2]int]int{}
	for _, x := range s {
		guided := 0
		if x.Guide != nil {
			guided = 1
		}
		if x.Flow {
			flow[[2]int{x.Size, guided}]++
		} else {
			eps[[2]int{x.Size, guided}]++
		}
	}
	for k, n := range eps {
		if flow[k] == 0 || n != 1 {
			t.Errorf("size %d guided %d: %d eps rows, %d flow rows", k[0], k[1], n, flow[k])
		}
	}
}
