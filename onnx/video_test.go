package onnx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/schedule"
)

// reference5 computes video.onnx's function in Go: a 3x3x3 convolution over
// (F, H, W) with weights refW(o,i,ky,kx)*(kf+1)/4, zero padding 1, plus
// B + A*t/1000.
func reference5(x []float32, shape []int, t []float32) []float32 {
	N, C, F, H, W := shape[0], shape[1], shape[2], shape[3], shape[4]
	out := make([]float32, len(x))
	for n := range N {
		for o := range C {
			bias := refB(o) + refA(o)*float64(ugo.TimestepAt(t, n))/1000
			for f := range F {
				for y := range H {
					for xx := range W {
						s := bias
						for i := range C {
							for kf := range 3 {
								ff := f + kf - 1
								if ff < 0 || ff >= F {
									continue
								}
								for ky := range 3 {
									for kx := range 3 {
										yy, xs := y+ky-1, xx+kx-1
										if yy < 0 || yy >= H || xs < 0 || xs >= W {
											continue
										}
										s += refW(o, i, ky, kx) * float64(kf+1) / 4 * float64(x[(((n*C+i)*F+ff)*H+yy)*W+xs])
									}
								}
							}
						}
						out[(((n*C+o)*F+f)*H+y)*W+xx] = float32(s)
					}
				}
			}
		}
	}
	return out
}

// TestVideoMatchesReference: a rank-5 sample reaches the graph in N,C,F,H,W
// order and the output comes back in the same layout, at every frame count,
// size and batch, with one timestep per clip.
func TestVideoMatchesReference(t *testing.T) {
	m := open(t, "video.onnx")
	mi := m.Info()
	if !mi.DynamicFrames() || !mi.DynamicSize() || !mi.DynamicBatch() || len(mi.Sample.Dims) != 5 {
		t.Fatalf("info: %v, DynamicFrames %v", mi.Sample, mi.DynamicFrames())
	}
	rng := rand.New(rand.NewPCG(5, 27))
	for _, shape := range [][]int{{1, 2, 1, 3, 3}, {1, 2, 8, 4, 4}, {2, 2, 16, 4, 6}, {3, 2, 5, 7, 3}, {2, 2, 2, 1, 9}} {
		x := randDense(rng, shape...)
		ts := make([]float32, shape[0])
		for i := range ts {
			ts[i] = float32(rng.IntN(1000))
		}
		dst := zerosLike(x)
		if err := m.PredictNoise(context.Background(), dst, x, ts); err != nil {
			t.Fatalf("%v: %v", shape, err)
		}
		assertClose(t, dst.Float32s(), reference5(x.Float32s(), shape, ts), 1e-4, fmtShape(shape))
	}
}

// TestVideoShapeErrors: rank and fixed-frame mismatches, and sizes refused
// by WithSpatialMultiple (H, W) and WithFrameMultiple (F), are
// *ugo.ShapeError values that name the axis.
func TestVideoShapeErrors(t *testing.T) {
	video := open(t, "video.onnx")
	f4 := open(t, "video_f4.onnx")
	img := open(t, "dynamic.onnx")
	mult := open(t, "video.onnx", WithSpatialMultiple(4))
	fmult := open(t, "video.onnx", WithFrameMultiple(2))
	if f4.Info().DynamicFrames() || img.Info().DynamicFrames() {
		t.Fatal("DynamicFrames on a fixed-frame or image model")
	}
	cases := []struct {
		name  string
		m     *Model
		shape []int
		want  string
	}{
		{"rank 4 on a video model", video, []int{1, 2, 8, 8}, "rank 5"},
		{"rank 5 on an image model", img, []int{1, 2, 4, 8, 8}, "rank 4"},
		{"fixed frames", f4, []int{1, 2, 8, 4, 4}, "F = 4"},
		{"channels", video, []int{1, 3, 4, 4, 4}, "C = 2"},
		{"height multiple", mult, []int{1, 2, 4, 6, 8}, "H a multiple of 4"},
		{"width multiple", mult, []int{1, 2, 4, 8, 2}, "W a multiple of 4"},
		{"frame multiple", fmult, []int{1, 2, 3, 4, 4}, "F a multiple of 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := tensor.New(tensor.WithShape(tc.shape...), tensor.Of(tensor.Float32))
			err := tc.m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1})
			var se *ugo.ShapeError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *ugo.ShapeError mentioning %q", err, tc.want)
			}
			if err := tc.m.Info().CheckShape(tc.shape); !errors.As(err, &se) {
				t.Fatalf("CheckShape: %v", err)
			}
		})
	}
	// Frame counts are not spatial: WithSpatialMultiple(4) takes F = 3, and
	// WithFrameMultiple(2) any H and W.
	for _, c := range []struct {
		m     *Model
		shape []int
	}{{mult, []int{1, 2, 3, 4, 8}}, {fmult, []int{1, 2, 6, 3, 5}}, {f4, []int{2, 2, 4, 3, 5}}} {
		x := tensor.New(tensor.WithShape(c.shape...), tensor.Of(tensor.Float32))
		if err := c.m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1, 2}[:c.shape[0]]); err != nil {
			t.Fatalf("%v: %v", c.shape, err)
		}
	}
	if _, err := Open(modelPath("video.onnx"), WithFrameMultiple(0)); err == nil {
		t.Fatal("WithFrameMultiple(0) accepted")
	}
}

// TestVideoUpsampleGuidance runs Upsample Guidance through the backend with
// a frame factor, a spatial factor and both. The low-resolution call must
// reach the model at F/fF frames and H/fH x W/fW pixels, and at w = 1 the
// guided prediction pooled by the factors equals that call's output over
// sqrt(k) (the identity of the guided prediction), which checks the layout
// of both calls.
func TestVideoUpsampleGuidance(t *testing.T) {
	m := open(t, "video.onnx")
	s := schedule.Linear(1000, 1e-4, 0.02)
	rng := rand.New(rand.NewPCG(2, 7))
	shape := []int{2, 2, 8, 4, 4}
	for _, factors := range [][]int{{2, 1, 1}, {1, 2, 2}, {2, 2, 2}} {
		low := []int{2, 2, 8 / factors[0], 4 / factors[1], 4 / factors[2]}
		var lowOut []float32
		var mu sync.Mutex
		rec := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, ts []float32) error {
			if err := m.PredictNoise(ctx, dst, x, ts); err != nil {
				return err
			}
			if slices.Equal(x.Shape(), low) {
				mu.Lock()
				lowOut = slices.Clone(dst.Float32s())
				mu.Unlock()
			}
			return nil
		})
		opts := guidance.DefaultUpsampleOptions()
		opts.Factors = factors
		g, err := guidance.Upsample(rec, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		x := randDense(rng, shape...)
		dst := zerosLike(x)
		if err := g.PredictNoise(context.Background(), dst, x, []float32{700, 300}); err != nil {
			t.Fatalf("%v: %v", factors, err)
		}
		if lowOut == nil {
			t.Fatalf("%v: no model call at %v", factors, low)
		}
		k := factors[0] * factors[1] * factors[2]
		want := make([]float32, len(lowOut))
		for i, v := range lowOut {
			want[i] = v / float32(math.Sqrt(float64(k)))
		}
		assertClose(t, pool5(dst.Float32s(), shape, factors), want, 2e-4, fmt.Sprintf("%v: pooled guided prediction", factors))
	}
}

// pool5 averages an N,C,F,H,W tensor over blocks of factors [fF, fH, fW].
func pool5(x []float32, shape, factors []int) []float32 {
	N, C, F, H, W := shape[0], shape[1], shape[2], shape[3], shape[4]
	ff, fh, fw := factors[0], factors[1], factors[2]
	lf, lh, lw := F/ff, H/fh, W/fw
	out := make([]float32, N*C*lf*lh*lw)
	for nc := range N * C {
		for f := range F {
			for y := range H {
				for xx := range W {
					o := ((nc*lf+f/ff)*lh+y/fh)*lw + xx/fw
					out[o] += x[((nc*F+f)*H+y)*W+xx] / float32(ff*fh*fw)
				}
			}
		}
	}
	return out
}
