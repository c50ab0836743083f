package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSettings checks the row list: every combination the table promises,
// once each.
func TestSettings(t *testing.T) {
	rows := settings(7.5, nil)
	seen := map[string]bool{}
	for _, s := range rows {
		require.False(t, seen[s.name()], "duplicate row %s", s.name())
		seen[s.name()] = true
	}
	for _, f := range []int{2, 4} {
		require.True(t, seen[setting{Factor: f, CFG: 7.5}.name()])
		for _, theta := range []float64{1, 1.2} {
			for _, eta := range []float64{0.3, 0.6, 1} {
				require.True(t, seen[setting{Factor: f, CFG: 7.5, Theta: theta, Eta: eta}.name()], "%d %g %g", f, theta, eta)
			}
		}
	}
	for _, c := range []float64{1, 3, 7.5} {
		for _, s := range []setting{{Factor: 1, CFG: c}, {Factor: 2, CFG: c}, {Factor: 2, CFG: c, Theta: 1.2, Eta: 0.6}} {
			require.True(t, seen[s.name()], s.name())
		}
	}
	require.Len(t, rows, 3+5+2*3+2+5)
	require.Equal(t, setting{Factor: 1, CFG: 7.5}, rows[0])

	more := settings(7.5, []float64{1.5, 2})
	require.Equal(t, rows, more[:len(rows)])
	require.Equal(t, []setting{{Factor: 2, CFG: 7.5, Theta: 1.5, Eta: 1}, {Factor: 4, CFG: 7.5, Theta: 1.5, Eta: 1},
		{Factor: 2, CFG: 7.5, Theta: 2, Eta: 1}, {Factor: 4, CFG: 7.5, Theta: 2, Eta: 1}}, more[len(rows):])
}

// TestCentreCrop checks the scoring crop: a 2x image made by repeating a
// 32x32 image's pixels crops to that image's centre 28x28, channels averaged.
func TestCentreCrop(t *testing.T) {
	const f, size = 2, 64
	src := make([]float32, 32*32)
	for i := range src {
		src[i] = float32(i%97)/48.5 - 1
	}
	px := make([]float32, 3*size*size)
	for c := range 3 {
		for y := range size {
			for x := range size {
				px[(c*size+y)*size+x] = src[(y/f)*32+x/f] + float32(c-1)*0.25 // channel offsets average out
			}
		}
	}
	got := centreCrop(px, 1, size, f)
	for y := range 28 {
		for x := range 28 {
			require.InDelta(t, src[(y+2)*32+x+2], got[y*28+x], 1e-6)
		}
	}
}
