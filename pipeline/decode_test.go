package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/internal/ortest"
)

func TestTileStarts(t *testing.T) {
	cases := []struct{ L, T, O int }{
		{64, 64, 16}, {65, 64, 16}, {113, 64, 16}, {128, 64, 16}, {256, 64, 16}, {192, 64, 16}, {100, 32, 0}, {30, 64, 16}, {97, 16, 8},
	}
	for _, c := range cases {
		s := tileStarts(c.L, c.T, c.O)
		require.Equal(t, 0, s[0])
		if c.L <= c.T {
			require.Equal(t, []int{0}, s)
			continue
		}
		require.Equal(t, c.L-c.T, s[len(s)-1], "%+v: the last tile ends at the edge", c)
		for i := 1; i < len(s); i++ {
			require.GreaterOrEqual(t, s[i-1]+c.T-s[i], c.O, "%+v: overlap of tiles %d and %d", c, i-1, i)
			require.Greater(t, s[i], s[i-1])
		}
		if len(s) > 1 {
			require.Less(t, s[1], c.T-c.O+1+c.T/2, "not more tiles than needed")
		}
	}
}

func TestAxisWeights(t *testing.T) {
	cases := []struct {
		name   string
		starts []int
		S, P   int
	}{
		{"one", []int{0}, 64, 64},
		{"two", []int{0, 48}, 64, 112},
		{"four", []int{0, 43, 85, 128}, 64, 192},
		{"three overlapping at once", []int{0, 20, 40}, 64, 104},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := axisWeights(c.starts, c.S, c.P)
			sum := make([]float64, c.P)
			for i, s := range c.starts {
				for k, v := range w[i] {
					require.GreaterOrEqual(t, v, float32(0))
					sum[s+k] += float64(v)
				}
			}
			for p, v := range sum {
				require.InDelta(t, 1, v, 1e-6, "pixel %d", p)
			}
			if c.name == "two" {
				// Overlap [48, 64): zero weight over the quarter at each
				// tile's own edge, full weight over the far quarter.
				for k := 60; k < 64; k++ {
					require.Zero(t, w[0][k], "tile 0 near its right edge")
					require.Equal(t, float32(1), w[1][k-48])
				}
				for k := 48; k < 52; k++ {
					require.Zero(t, w[1][k-48], "tile 1 near its left edge")
					require.Equal(t, float32(1), w[0][k])
				}
			}
		})
	}
}

// TestTiledDecodeMatchesWhole decodes the same latents whole and in tiles.
// The tiny VAE's receptive field is under 2 latent pixels: with an overlap
// of 12 (zero-weight margins of 3) the tiles agree with the whole decode
// everywhere; with an overlap of 4 (margins of 1) only away from the seams.
func TestTiledDecodeMatchesWhole(t *testing.T) {
	for _, v := range []struct {
		variant string
		tol     float64
	}{{"fp32", 1e-4}, {"fp16", 2e-2}} {
		t.Run(v.variant, func(t *testing.T) {
			m := load(t, tinyDir(v.variant))
			ctx := context.Background()
			// 64 = 24 + 2*20 and 84 = 24 + 3*20: tiles of 24 with overlap 4
			// overlap by exactly 4.
			lat := randLatents(9, 2, 4, 64, 84)
			for i, x := range lat.Float32s() {
				lat.Float32s()[i] = x * float32(DefaultScalingFactor) // sampler-space scale
			}
			before := append([]float32(nil), lat.Float32s()...)
			whole, err := m.Decode(ctx, lat, DecodeOptions{Tiling: TileNever})
			require.NoError(t, err)
			require.Equal(t, []int{2, 3, 512, 672}, []int(whole.Shape()))
			require.Equal(t, before, lat.Float32s(), "latents are not modified")

			var tiles []Progress
			wide, err := m.Decode(ctx, lat, DecodeOptions{Tiling: TileAlways, TileSize: 32, Overlap: 12,
				progress: func(p Progress) error { tiles = append(tiles, p); return nil }})
			require.NoError(t, err)
			plan, _ := DecodeOptions{TileSize: 32, Overlap: 12, Tiling: TileAlways}.plan(64, 84, 8)
			n := len(plan.ys) * len(plan.xs)
			require.Greater(t, n, 4)
			require.Len(t, tiles, 2*n)
			require.Equal(t, Progress{Stage: StageDecode, Done: 2 * n, Total: 2 * n}, tiles[len(tiles)-1])
			require.LessOrEqual(t, maxAbsDiff(t, whole.Float32s(), wide.Float32s()), v.tol)

			narrow, err := m.Decode(ctx, lat, DecodeOptions{Tiling: TileAlways, TileSize: 24, Overlap: 4})
			require.NoError(t, err)
			plan, _ = DecodeOptions{TileSize: 24, Overlap: 4, Tiling: TileAlways}.plan(64, 84, 8)
			require.Equal(t, []int{0, 20, 40}, plan.ys)
			require.Equal(t, []int{0, 20, 40, 60}, plan.xs)
			// Pixels within 16 (2 latent pixels) of an interior tile edge.
			seam := func(p int, starts []int, size, total int) bool {
				for _, s := range starts {
					for _, e := range []int{s * 8, (s + size) * 8} {
						if e > 0 && e < total && p >= e-16 && p < e+16 {
							return true
						}
					}
				}
				return false
			}
			W, H := 672, 512
			away, near := 0.0, 0.0
			a, b := whole.Float32s(), narrow.Float32s()
			for i := range a {
				x, y := i%W, (i/W)%H
				d := float64(a[i] - b[i])
				if d < 0 {
					d = -d
				}
				if seam(x, plan.xs, plan.tw, W) || seam(y, plan.ys, plan.th, H) {
					near = max(near, d)
				} else {
					away = max(away, d)
				}
			}
			require.LessOrEqual(t, away, v.tol, "away from the seams")
			if v.variant == "fp32" {
				require.Greater(t, near, 1e-6, "the narrow margins do show at the seams")
			}
			t.Logf("max |tiled-whole|: %.3g away from seams, %.3g near them (overlap 4); %.3g everywhere with overlap 12",
				away, near, maxAbsDiff(t, whole.Float32s(), wide.Float32s()))
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	m := load(t, tinyDir("fp32"))
	ctx := context.Background()
	cases := []struct {
		name string
		x    *tensor.Dense
		opts DecodeOptions
		want string
	}{
		{"nil", nil, DecodeOptions{}, "want float32 latents"},
		{"rank", tensor.New(tensor.WithShape(4, 8, 8), tensor.Of(tensor.Float32)), DecodeOptions{}, "want float32 latents"},
		{"channels", tensor.New(tensor.WithShape(1, 3, 8, 8), tensor.Of(tensor.Float32)), DecodeOptions{}, "want [N, 4, h, w]"},
		{"float64", tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.Of(tensor.Float64)), DecodeOptions{}, "want float32 latents"},
		{"tile", tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.Of(tensor.Float32)), DecodeOptions{TileSize: 1}, "tile size 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Decode(ctx, c.x, c.opts)
			require.ErrorContains(t, err, c.want)
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := m.Decode(cancelled, tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.Of(tensor.Float32)), DecodeOptions{})
	require.ErrorIs(t, err, context.Canceled)
}

// memEnv selects the decode a memory-measuring subprocess runs.
const memEnv = "UGO_PIPELINE_DECODE_MEMORY"

// TestDecodeMemory measures the peak resident memory (VmHWM) of decoding a
// 2048x2048 image with the tiny VAE, whole and tiled, each in a fresh
// process. It runs only when UGO_MEMORY_REPORT=1 (it takes a while); see the
// package documentation for the numbers.
func TestDecodeMemory(t *testing.T) {
	if mode := os.Getenv(memEnv); mode != "" {
		decodeForMemory(t, mode)
		return
	}
	if os.Getenv("UGO_MEMORY_REPORT") != "1" {
		t.Skip("set UGO_MEMORY_REPORT=1 to measure decoding memory")
	}
	ortest.Require(t)
	peak := map[string]int{}
	for _, mode := range []string{"baseline", "whole", "tiled"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDecodeMemory$", "-test.v")
		cmd.Env = append(os.Environ(), memEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if _, v, ok := strings.Cut(sc.Text(), "VmHWM_kB="); ok {
				peak[mode], _ = strconv.Atoi(strings.Fields(v)[0])
			}
		}
		require.NotZero(t, peak[mode], "%s", out)
	}
	t.Logf("peak RSS decoding 2048x2048 (tiny VAE): baseline (model loaded, latents) %d MB, whole %d MB, tiled (64/16) %d MB",
		peak["baseline"]>>10, peak["whole"]>>10, peak["tiled"]>>10)
	require.Less(t, peak["tiled"]-peak["baseline"], (peak["whole"]-peak["baseline"])/2)
}

func decodeForMemory(t *testing.T, mode string) {
	m := load(t, tinyDir("fp32"))
	lat := randLatents(1, 1, 4, 256, 256)
	opts := map[string]DecodeOptions{"whole": {Tiling: TileNever}, "tiled": {Tiling: TileAlways}}
	if o, ok := opts[mode]; ok {
		out, err := m.Decode(context.Background(), lat, o)
		require.NoError(t, err)
		require.Equal(t, []int{1, 3, 2048, 2048}, []int(out.Shape()))
	}
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("VmHWM_kB=%s\n", strings.Fields(v)[0])
		}
	}
}
