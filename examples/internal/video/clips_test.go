package video

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// Render equals tools/video/clips.py's torch render (affine_grid and
// grid_sample, align_corners=False, background -1) on a synthetic image
// under translations, rotations, zooms and a combination, at 1 and 4
// frames (testdata/video/render_golden.json, from tools/video/golden.py).
func TestRenderMatchesTorch(t *testing.T) {
	raw, err := os.ReadFile("../../../testdata/video/render_golden.json")
	require.NoError(t, err)
	var g struct {
		H, W  int
		Image []float32
		Cases []struct {
			Frames     int
			Start, End [4]float64
			Out        []float32
		}
	}
	require.NoError(t, json.Unmarshal(raw, &g))
	require.Len(t, g.Cases, 8)
	for i, c := range g.Cases {
		m := Motion{Start: Pose{c.Start[0], c.Start[1], c.Start[2], c.Start[3]}, End: Pose{c.End[0], c.End[1], c.End[2], c.End[3]}}
		dst := make([]float32, c.Frames*g.H*g.W)
		require.NoError(t, Render(dst, g.Image, g.H, g.W, c.Frames, m))
		worst := 0.0
		for k := range dst {
			worst = math.Max(worst, math.Abs(float64(dst[k]-c.Out[k])))
		}
		require.Less(t, worst, 1e-4, "case %d (%d frames, %v -> %v)", i, c.Frames, c.Start, c.End)
	}
}

// Clips are reproducible from their seed, lie in [-1, 1], and move: every
// clip's frames differ from one another, and the identity motion leaves an
// image unchanged.
func TestClips(t *testing.T) {
	const n, h, w = 3, 28, 28
	imgs := make([]float32, n*h*w)
	for i := range imgs {
		imgs[i] = float32(math.Sin(float64(i)/7))*0.8 - 0.1
	}
	a, err := Clips(imgs, n, h, w, 10, 8, 7)
	require.NoError(t, err)
	b, err := Clips(imgs, n, h, w, 10, 8, 7)
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := Clips(imgs, n, h, w, 10, 8, 8)
	require.NoError(t, err)
	require.NotEqual(t, a, c)
	for _, v := range a {
		require.True(t, v >= -1 && v <= 1, "value %v", v)
	}
	for k := range 10 {
		f0 := a[k*8*h*w:][:h*w]
		f7 := a[(k*8+7)*h*w:][:h*w]
		require.NotEqual(t, f0, f7, "clip %d does not move", k)
	}
	still := make([]float32, 2*h*w)
	require.NoError(t, Render(still, imgs[:h*w], h, w, 2, Motion{Start: Pose{Scale: 1}, End: Pose{Scale: 1}}))
	for i, v := range imgs[:h*w] {
		require.InDelta(t, v, still[i], 1e-6)
		require.InDelta(t, v, still[h*w+i], 1e-6)
	}
	_, err = Clips(imgs[:5], n, h, w, 1, 8, 1)
	require.Error(t, err)
	require.Error(t, Render(make([]float32, 3), imgs[:h*w], h, w, 2, Motion{}))
}
