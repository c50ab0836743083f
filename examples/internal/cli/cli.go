// Package cli holds the flag checks that the example programs share, so that
// every program refuses bad flags at start, before any model is loaded or
// any work is done: stray positional arguments, negative thread counts,
// sizes and counts out of range, and requests whose buffers would exceed
// ugo.MemoryLimit.
//
// # Errors
//
// Parse returns the flag package's errors (flag.ErrHelp for -h) and an
// *ArgError for positional arguments; the checks return *FlagError values
// naming the flag, and Memory a *ugo.MemoryError.
package cli

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/ugo-diffusion/ugo"
)

// ArgError reports positional arguments, which no example program takes.
type ArgError struct {
	// Args are the unexpected arguments.
	Args []string
}

// Error implements error.
func (e *ArgError) Error() string {
	return fmt.Sprintf("unexpected arguments %q (every setting is a -flag)", e.Args)
}

// FlagError reports a flag whose value is out of range.
type FlagError struct {
	// Flag is the flag's name without the dash, Value its value and Want
	// what is accepted.
	Flag  string
	Value any
	Want  string
}

// Error implements error.
func (e *FlagError) Error() string {
	return fmt.Sprintf("-%s %v: want %s", e.Flag, e.Value, e.Want)
}

// Parse parses args with fs and refuses positional arguments.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &ArgError{Args: fs.Args()}
	}
	return nil
}

// Positive returns a *FlagError unless v > 0.
func Positive(name string, v int) error {
	if v <= 0 {
		return &FlagError{Flag: name, Value: v, Want: "a positive number"}
	}
	return nil
}

// NonNegative returns a *FlagError unless v >= 0.
func NonNegative(name string, v int) error {
	if v < 0 {
		return &FlagError{Flag: name, Value: v, Want: "0 or more"}
	}
	return nil
}

// Threads checks an ONNX Runtime thread count: 0 (the runtime's default) or
// a positive count up to 1024.
func Threads(name string, v int) error {
	if v < 0 || v > 1024 {
		return &FlagError{Flag: name, Value: v, Want: "0 (the runtime's default) to 1024 threads"}
	}
	return nil
}

// Between returns a *FlagError unless lo <= v <= hi.
func Between(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return &FlagError{Flag: name, Value: v, Want: fmt.Sprintf("%d to %d", lo, hi)}
	}
	return nil
}

// Finite returns a *FlagError unless v is a finite number in [lo, hi].
func Finite(name string, v, lo, hi float64) error {
	if !(v >= lo && v <= hi) || math.IsInf(v, 0) {
		return &FlagError{Flag: name, Value: v, Want: fmt.Sprintf("a number in [%g, %g]", lo, hi)}
	}
	return nil
}

// Memory returns a *ugo.MemoryError when copies float32 tensors of the
// given shape exceed ugo.MemoryLimit; what describes them.
func Memory(what string, copies int, shape ...int) error {
	return ugo.CheckMemory(what, ugo.TensorBytes(copies, shape...))
}

// First returns the first non-nil error.
func First(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Split splits a comma-separated list, trimming spaces and dropping empty
// entries.
func Split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// StartCPUProfile starts a CPU profile written to path (a -cpuprofile flag)
// and returns the function that stops it and closes the file; stop may be
// called more than once (an explicit stop after the timed part and a
// deferred one). An empty path profiles nothing and stop does nothing.
func StartCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	stopped := false
	return func() error {
		if stopped {
			return nil
		}
		stopped = true
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
