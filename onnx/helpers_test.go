package onnx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/x448/float16"
	"gorgonia.org/tensor"
)

// repoLib is the link to the library `make ort` installs (scripts/ort.sh
// pins the version), relative to this package.
const repoLib = "../.cache/ort/libonnxruntime.so.1"

func TestMain(m *testing.M) {
	// Let tests and examples find the library `make ort` fetched when the
	// environment does not name one (make test always sets it).
	if os.Getenv(LibraryEnv) == "" && os.Getenv(subprocessEnv) == "" {
		if abs, err := filepath.Abs(repoLib); err == nil {
			if _, err := os.Stat(abs); err == nil {
				os.Setenv(LibraryEnv, abs)
			}
		}
	}
	os.Exit(m.Run())
}

// requireRuntime initialises ONNX Runtime or skips the test; under CI
// (CI=true) a missing runtime fails the test instead.
func requireRuntime(tb testing.TB) {
	tb.Helper()
	if err := InitRuntime(""); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("ONNX Runtime is required under CI: %v", err)
		}
		tb.Skipf("ONNX Runtime not available (run `make ort` and set %s): %v", LibraryEnv, err)
	}
}

func modelPath(name string) string { return filepath.Join("..", "testdata", "onnx", name) }

// open opens a test model, failing the test on error, and closes it at the end.
func open(tb testing.TB, name string, opts ...Option) *Model {
	tb.Helper()
	requireRuntime(tb)
	m, err := Open(modelPath(name), opts...)
	if err != nil {
		tb.Fatalf("Open(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return m
}

// The weights of every test model (see tools/testmodels/gen.py).
const (
	refC = 2
	refD = 4
)

func refW(o, i, ky, kx int) float64 { return float64((3*o+5*i+7*ky+11*kx)%13-6) / 8 }
func refB(o int) float64            { return float64(o+1) / 4 }
func refA(o int) float64            { return float64(2*o+1) / 2 }
func refP(o, d int) float64         { return float64((o+2*d)%5-2) / 4 }

// reference computes the test models' function in Go:
// eps = conv3x3(x) + B + A*t/1000 (+ P . mean_l(c)).
// tOf gives the timestep of batch element n; cond, when non-nil, gives the
// [L][D] embedding of batch element n.
func reference(x []float32, shape []int, tOf func(n int) float64, cond func(n int) [][]float32) []float32 {
	N, C, H, W := shape[0], shape[1], shape[2], shape[3]
	out := make([]float32, len(x))
	for n := range N {
		var h [refD]float64
		if cond != nil {
			rows := cond(n)
			for _, r := range rows {
				for d := range refD {
					h[d] += float64(r[d]) / float64(len(rows))
				}
			}
		}
		for o := range C {
			bias := refB(o) + refA(o)*tOf(n)/1000
			if cond != nil {
				for d := range refD {
					bias += refP(o, d) * h[d]
				}
			}
			for y := range H {
				for xx := range W {
					s := bias
					for i := range C {
						for ky := range 3 {
							for kx := range 3 {
								yy, xs := y+ky-1, xx+kx-1
								if yy < 0 || yy >= H || xs < 0 || xs >= W {
									continue
								}
								s += refW(o, i, ky, kx) * float64(x[((n*C+i)*H+yy)*W+xs])
							}
						}
					}
					out[((n*C+o)*H+y)*W+xx] = float32(s)
				}
			}
		}
	}
	return out
}

// randDense returns a float32 tensor of the given shape with N(0,1) entries.
func randDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

func zerosLike(x *tensor.Dense) *tensor.Dense {
	return tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(tensor.Float32))
}

// roundHalf rounds to float16 precision, for references of float16 models.
func roundHalf(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float16.Fromfloat32(v).Float32()
	}
	return out
}

// maxDiff returns the largest |a-b| and its index; it fails on length mismatch.
func maxDiff(tb testing.TB, a, b []float32) (float64, int) {
	tb.Helper()
	if len(a) != len(b) {
		tb.Fatalf("length %d != %d", len(a), len(b))
	}
	worst, at := 0.0, -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst || at < 0 {
			worst, at = d, i
		}
	}
	return worst, at
}

func assertClose(tb testing.TB, got, want []float32, tol float64, what string) {
	tb.Helper()
	d, i := maxDiff(tb, got, want)
	if d > tol {
		tb.Fatalf("%s: max |got-want| = %g at %d (got %v, want %v), tolerance %g", what, d, i, got[i], want[i], tol)
	}
}

func fmtShape(s []int) string { return fmt.Sprint(s) }
