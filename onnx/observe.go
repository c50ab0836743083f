package onnx

import "time"

// RunTiming describes one ONNX Runtime Run call, as WithRunObserver
// reports it.
type RunTiming struct {
	// Path is the model file the session was created from.
	Path string
	// Inputs are the dimensions of each session input, in the session's
	// input order (for a Model: the sample, the timestep, then the extra
	// inputs). They are the session's own: read them during the report
	// only, and do not modify them.
	Inputs [][]int64
	// Start and End bracket the runtime's Run call alone: binding and
	// converting the inputs, and copying and checking the outputs, happen
	// outside it.
	Start, End time.Time
	// Err is the runtime's error; nil when the call succeeded.
	Err error
}

// Duration is End - Start.
func (r RunTiming) Duration() time.Duration { return r.End.Sub(r.Start) }

// WithRunObserver makes every Run call of the model's sessions (the
// dynamic one and any shape-specialised ones) report its timing to f,
// right after the call returns, on the goroutine that made it. f must be
// safe for concurrent use and quick, since it runs inside the caller's
// prediction. Use it for latency metrics, or to tell the runtime's share
// of a program's time from the rest (examples/latentbudget does). A nil f
// removes an earlier observer.
func WithRunObserver(f func(RunTiming)) Option {
	return func(c *config) { c.observe = f }
}

// observed runs call, which makes one Run call of the session for the
// model at path with inputs of the given dimensions, and reports its
// timing to f when f is set.
func observed(f func(RunTiming), path string, inputs [][]int64, call func() error) error {
	if f == nil {
		return call()
	}
	start := time.Now()
	err := call()
	f(RunTiming{Path: path, Inputs: inputs, Start: start, End: time.Now(), Err: err})
	return err
}
