// Package graphmodel is ugo's gorgonia backend: a ugo.Denoiser whose network
// is a gorgonia (gorgonia.org/gorgonia v0.9.18) expression graph, so that
// denoisers defined, and trained, in pure Go plug into ugo's samplers and
// guidance. It needs no cgo.
//
// # Building a model
//
// A BuildFunc adds the network to a graph, given the input nodes x (N, C,
// H, W) and t (N), and returns the eps node; New wraps it in a Model:
//
//	model, err := graphmodel.New(func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
//		w, err := graphmodel.Weight(g, "conv1.w", conv1) // conv1: a *tensor.Dense of parameters
//		...
//	})
//	guided, err := guidance.Upsample(model, sched, guidance.DefaultUpsampleOptions())
//	err = sampler.Sample(ctx, guided, ddim, x, sampler.Options{Steps: 50})
//
// Package convnet is a complete example: a small U-shaped convolutional
// network with a sinusoidal timestep embedding, its Trainer (Adam on the
// v-prediction loss) and a weights file format; examples/gotrain trains it on
// Fashion-MNIST and samples it with and without Upsample Guidance.
//
// # One graph per shape
//
// gorgonia graphs have static shapes, and a sampler with guidance calls the
// model at several: Upsample Guidance at 2x calls it at the sample's shape
// and at half of it, in every step. A Model therefore builds, compiles
// (gorgonia.Compile) and keeps one graph and one TapeMachine per input
// shape, batch size included, on the first call at that shape, and reuses
// them afterwards. The input tensors bound to x and t (gorgonia.Let, once)
// are reused too: a call copies x and the timesteps (a single timestep is
// repeated over the batch) into them, runs the tape, and copies the output
// into dst. Stats counts compilations and cache hits. The cache never
// shrinks; a program that feeds a Model an unbounded number of shapes
// should make a new Model now and then.
//
// # Shared parameters
//
// Nodes belong to one graph, so the parameters of a network cannot be nodes
// shared by the per-shape graphs. They live in *tensor.Dense values owned by
// the caller, and each graph binds them with Weight, which gives the node a
// header of its own over the tensor's backing slice: gorgonia's in-place
// header changes (an operand transposed for a matrix product, and restored)
// stay inside one graph, while the numbers are shared and only read. An
// optimiser step that updates the tensors in place (gorgonia's solvers do)
// is seen by every graph at its next run; running and training at the same
// time is a data race. gorgonia merges input nodes of equal name, type and
// shape within a graph, so every Weight needs its own name.
//
// # Concurrency
//
// A Model is safe for concurrent use. Each cached graph has its own mutex:
// calls at different shapes (guidance's two calls of a step) run in
// parallel, calls at the same shape one after the other. The cache itself
// is guarded by another mutex, held only for the lookup. Building and
// compiling a graph (the first call at a shape) holds a package-wide lock:
// gorgonia v0.9.18 builds nodes with package-level state that is not safe
// for concurrent use (the race detector found two first calls racing in
// internal/encoding). Code that builds gorgonia graphs of its own (a
// training graph, say) must not do so while a Model builds one.
//
// # Errors
//
// PredictNoise validates its arguments with ugo.CheckPrediction (nil or
// non-float32 tensors, shape mismatches, the number of timesteps, non-finite
// timesteps) and returns ctx.Err() when ctx is done before the graph runs,
// including after waiting for another call at the same shape; a graph run
// itself cannot be interrupted. A BuildFunc error, a panic inside the
// BuildFunc or inside gorgonia's graph construction or compilation, and an
// output node of the wrong shape or dtype are returned as errors (a failed
// build is not cached: the next call at that shape tries again). Panics
// raised while the tape runs are recovered when they happen on the calling
// goroutine; but gorgonia v0.9.18 executes the tape's instructions on a
// goroutine of its own (TapeMachine.RunAll), where a panic cannot be
// recovered and ends the program. Graphs of gorgonia's own ops whose shapes
// were checked at build time, as convnet's are, have not panicked there in
// this package's tests.
// A NaN or infinite output (from non-finite x or weights that overflow) is
// an error wrapping ugo.ErrNonFinite, as from the onnx backend; a nil or zero
// *Model returns an error wrapping ugo.ErrNilDenoiser; dst sharing memory
// with x is ugo.ErrAlias and a lazily transposed view a *ugo.ShapeError
// (both from ugo.CheckPrediction).
//
// # Performance and limits
//
// Measured on this project's 2-core machines (Intel Xeon, Go 1.26,
// GOMAXPROCS=1, niced, while a PyTorch job kept the other core busy; the
// spread is over repeated runs) with convnet's DefaultConfig network
// (61,378 parameters, 10 MFLOP per 14x14 image), BenchmarkPredictNoise and
// convnet's BenchmarkTrainStep:
//
//	PredictNoise 1x1x14x14    3.6-4.6 ms   2,970 allocs, 1.6 MB per call
//	PredictNoise 1x1x28x28     11-12 ms    3,075 allocs, 6.0 MB per call
//	PredictNoise 16x1x14x14    43-49 ms    3,555 allocs,  23 MB per call
//	first call at a shape      9-12 ms     build + compile, 27,000 allocs
//	training step, batch 32   0.23-0.30 s  (3.3-4.3 steps/s; 2.6-2.9 in
//	                                        examples/gotrain under heavier load)
//	training step, batch 16   0.13-0.15 s  (6.6-7.4 steps/s)
//
// Sampling 16 images with DDIM in 50 steps takes about 2.5 s at 14x14,
// 11 s at 28x28 and 15 s at 28x28 with Upsample Guidance (which adds a
// 14x14 call per step).
//
// What limits gorgonia v0.9.18 here:
//
//   - Allocation. TapeMachine.Reset, needed before every run, drops every
//     register, so each run allocates every intermediate tensor again: the
//     allocations above are per call, in steady state, and scale with the
//     activations and im2col buffers. There is no API to rerun a tape on its
//     previous buffers; only the input tensors are reused.
//   - Speed. Conv2d is im2col followed by a matrix product in gonum's pure
//     Go BLAS: 3-4 GFLOP/s on one core at batch 16, 2.5 at batch 1. The
//     im2col loop takes a quarter of a forward pass, the matrix products a
//     third; broadcasting operators materialise the repeated operand first
//     (a tenth).
//   - Broadcasting covers the first four axes only (BroadcastPattern is one
//     byte, four bits per operand): a rank-5 (N, C, F, H, W) broadcast fails
//     with a shape mismatch; fold axes with Reshape first.
//   - AveragePool2D divides each window's sum by the input width instead of
//     the window size, AveragePool1D calls MaxPool2D, and Upsample2D reads
//     and writes every element through boxed At/SetAt calls; convnet pools
//     and upsamples with Reshape, Sum and a broadcast product instead.
//   - NewTapeMachine panics when the graph does not compile (Model compiles
//     first and passes the program in), and RunAll runs the tape on a new
//     goroutine (see Errors); a run cannot be cancelled midway.
//   - The Adam solver has a fixed learning rate and allocates temporary
//     tensors for every parameter at every step.
package graphmodel
