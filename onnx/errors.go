package onnx

import (
	"fmt"
	"slices"
	"strings"

	"gorgonia.org/tensor"
)

// RunError reports a call that ONNX Runtime accepted for execution and then
// failed inside the graph: most often a sample size the graph cannot take
// although its declared dimensions are dynamic (a U-net whose pooling needs
// sizes divisible by 8, an output that is not the shape of x). Err is the
// runtime's own message. Declare such constraints up front with
// WithSpatialMultiple so that they are refused before the call as a
// *ugo.ShapeError.
type RunError struct {
	// Model is the model's path, Shape the sample shape of the call (nil
	// for Graph calls, whose inputs are named in Inputs).
	Model  string
	Shape  []int
	Inputs string
	// Err is the runtime's error.
	Err error
}

// Error implements error.
func (e *RunError) Error() string {
	switch {
	case e.Shape != nil:
		return fmt.Sprintf("onnx: inference failed for a sample of shape %v (model %s): %v", e.Shape, e.Model, e.Err)
	case e.Inputs != "":
		return fmt.Sprintf("onnx: inference failed for inputs %s (model %s): %v", e.Inputs, e.Model, e.Err)
	}
	return fmt.Sprintf("onnx: inference failed (model %s): %v", e.Model, e.Err)
}

// Unwrap returns the runtime's error.
func (e *RunError) Unwrap() error { return e.Err }

// describeInputs lists the inputs of a Run call with their shapes, sorted
// by name: "a[1 2] b[3]".
func describeInputs(inputs map[string]*tensor.Dense) string {
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s%v", name, []int(inputs[name].Shape()))
	}
	return b.String()
}
