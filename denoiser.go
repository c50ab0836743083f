package ugo

import (
	"context"
	"fmt"
	"slices"

	"gorgonia.org/tensor"
)

// Denoiser predicts the noise eps in a noisy sample x_t.
//
// PredictNoise writes eps(x, t) into dst, which has the shape of x. x is a
// float32 tensor laid out NCHW (images) or NCFHW (video); t holds the
// diffusion timestep of each batch element (len(t) == N) or a single
// timestep shared by the whole batch (len(t) == 1). Timesteps are float32
// because Upsample Guidance evaluates models at fractional, SNR-matched
// times; a backend whose model takes integer timesteps rounds them.
//
// Implementations must not retain x, dst or t after returning, must not
// modify x, and must honour ctx cancellation by returning ctx.Err() (or an
// error wrapping it). A Denoiser is safe for concurrent use unless its
// documentation says otherwise: guidance middleware calls the model it wraps
// from several goroutines at once.
type Denoiser interface {
	PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error
}

// DenoiserFunc adapts an ordinary function to the Denoiser interface, in the
// manner of http.HandlerFunc.
type DenoiserFunc func(ctx context.Context, dst, x *tensor.Dense, t []float32) error

// PredictNoise calls f(ctx, dst, x, t).
func (f DenoiserFunc) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	return f(ctx, dst, x, t)
}

// ShapeError reports a tensor whose shape, rank or element type does not fit
// what a Denoiser, sampler or guidance expects.
type ShapeError struct {
	// What names the offending argument, such as "dst" or "x".
	What string
	// Got is the shape that was passed (nil when the tensor itself was nil).
	Got []int
	// Want describes what was expected.
	Want string
}

// Error implements error.
func (e *ShapeError) Error() string {
	if e.Got == nil {
		return fmt.Sprintf("ugo: %s: %s", e.What, e.Want)
	}
	return fmt.Sprintf("ugo: %s has shape %v, want %s", e.What, e.Got, e.Want)
}

// CheckSample verifies that x is a non-nil float32 tensor of rank 4 (N, C, H,
// W) or rank 5 (N, C, F, H, W) with positive dimensions and a dense backing
// slice stored in row-major logical order, and returns its shape. A lazily
// transposed tensor (x.T without Materialize), a column-major one and a
// zero tensor.Dense are refused, since every consumer reads the backing
// slice in storage order. name is used in the error, a *ShapeError.
func CheckSample(name string, x *tensor.Dense) ([]int, error) {
	shape, err := CheckDense(name, x, 4)
	if err != nil {
		return nil, err
	}
	if len(shape) != 4 && len(shape) != 5 {
		return nil, &ShapeError{What: name, Got: shape, Want: "rank 4 (N,C,H,W) or rank 5 (N,C,F,H,W)"}
	}
	return shape, nil
}

// CheckDense verifies that x is a non-nil, initialised float32 tensor of
// rank minRank or more with positive dimensions, a backing slice that
// matches its shape, and storage in row-major logical order (not a lazily
// transposed or column-major view), and returns its shape. It is
// CheckSample without the rank-4-or-5 rule, for image kernels that take any
// leading axes (..., H, W). Errors are *ShapeError values naming name.
func CheckDense(name string, x *tensor.Dense, minRank int) ([]int, error) {
	if x == nil {
		return nil, &ShapeError{What: name, Want: "a tensor, got nil"}
	}
	shape := []int(x.Shape())
	if x.Dtype().Type == nil {
		return nil, &ShapeError{What: name, Want: "an initialised tensor, got a zero tensor.Dense (no dtype, no data)"}
	}
	if x.Dtype() != tensor.Float32 {
		return nil, &ShapeError{What: name, Got: shape, Want: fmt.Sprintf("dtype float32, got %v", x.Dtype())}
	}
	if len(shape) < minRank || (x.IsScalar() && minRank > 0) {
		return nil, &ShapeError{What: name, Got: shape, Want: fmt.Sprintf("rank %d or more", minRank)}
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, &ShapeError{What: name, Got: shape, Want: "positive dimensions"}
		}
		n *= d
	}
	if data := x.Float32s(); len(data) != n {
		return nil, &ShapeError{What: name, Got: shape, Want: "a dense float32 tensor whose backing slice matches its shape"}
	}
	if x.RequiresIterator() || !x.DataOrder().IsRowMajor() {
		return nil, &ShapeError{What: name, Got: shape, Want: "a row-major tensor stored in its logical order, not a lazily transposed or column-major view (call Materialize or copy it first)"}
	}
	return shape, nil
}

// CheckPrediction validates the arguments of a PredictNoise call: x and dst
// must pass CheckSample with identical shapes, and len(t) must be 1 or the
// batch size N. Every t must be finite. dst must not share memory with x
// (an error wrapping ErrAlias). Backends and middleware call it first so
// that bad input becomes an error, never a panic.
func CheckPrediction(dst, x *tensor.Dense, t []float32) error {
	xs, err := CheckSample("x", x)
	if err != nil {
		return err
	}
	ds, err := CheckSample("dst", dst)
	if err != nil {
		return err
	}
	if !slices.Equal([]int(xs), []int(ds)) {
		return &ShapeError{What: "dst", Got: ds, Want: fmt.Sprintf("the shape of x %v", xs)}
	}
	if Overlapping(dst, x) {
		return fmt.Errorf("ugo: %w: PredictNoise writes dst while it reads x; pass a separate buffer", ErrAlias)
	}
	if len(t) != 1 && len(t) != xs[0] {
		return fmt.Errorf("ugo: got %d timesteps for a batch of %d, want 1 or %d", len(t), xs[0], xs[0])
	}
	for i, v := range t {
		if v != v || v > 3.4e38 || v < -3.4e38 {
			return fmt.Errorf("ugo: timestep %d is %v, want a finite number", i, v)
		}
	}
	return nil
}

// TimestepAt returns the timestep of batch element i under the broadcasting
// rule of Denoiser: t[0] for every element when len(t) == 1, t[i] otherwise.
func TimestepAt(t []float32, i int) float32 {
	if len(t) == 1 {
		return t[0]
	}
	return t[i]
}
